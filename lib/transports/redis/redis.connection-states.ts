import type { Observable, Subscription } from 'rxjs';
import type { TransportState, TransportStatus } from '../../interfaces/transport.interface.js';

/**
 * The one fold of the connection states a Redis part uses (the transport's
 * publisher and reader; a microservice server's or client's publisher and
 * readers) into one status:
 *
 * - `connected` once every watched connection is;
 * - otherwise the worst state among them (`disconnected` over
 *   `reconnecting` over `connecting`; `closed` reads as `disconnected`: one
 *   connection closed means the whole is down), with that one's role and
 *   reason.
 *
 * `onStatus` hears every change of the folded state; `connected(again)` and
 * `reconnecting()` are the shortcuts the microservices use (`again` after an
 * earlier loss; `reconnecting` only once it had been connected).
 */
export class ConnectionStates {
  private readonly states = new Map<string, TransportStatus>();
  private readonly subscriptions: Subscription[] = [];
  private everConnected = false;
  private folded: TransportState = 'connecting';

  constructor(
    private readonly on: {
      /** All connected; `again` is true after an earlier loss. */
      connected?(again: boolean): void;
      /** One connection is down after all had been connected. */
      reconnecting?(): void;
      /** Every change of the folded status. */
      onStatus?(status: TransportStatus): void;
    },
  ) {}

  /** Watches one more connection, known as `key` (its role when its status has none). */
  watch(
    key: string,
    status$: Observable<{
      readonly state: TransportState;
      readonly role?: string;
      readonly reason?: string;
    }>,
  ): void {
    this.states.set(key, { state: 'connecting', role: key });
    this.subscriptions.push(
      status$.subscribe(status => {
        this.states.set(key, {
          state: status.state,
          role: status.role ?? key,
          reason: status.reason,
        });
        this.update();
      }),
    );
  }

  /** The folded status now. */
  get status(): TransportStatus {
    return fold([...this.states.values()]);
  }

  private update(): void {
    const status = this.status;
    if (status.state === this.folded) return;
    this.folded = status.state;
    this.on.onStatus?.(status);
    if (status.state === 'connected') {
      const again = this.everConnected;
      this.everConnected = true;
      this.on.connected?.(again);
    } else if (
      this.everConnected &&
      (status.state === 'reconnecting' || status.state === 'disconnected')
    ) {
      this.on.reconnecting?.();
    }
  }

  close(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions.length = 0;
  }
}

const SEVERITY: Readonly<Record<TransportState, number>> = {
  connected: 0,
  connecting: 1,
  reconnecting: 2,
  disconnected: 3,
  closed: 3,
};

/** The fold itself: connected when all are, else the worst state (the first of equals). */
export function fold(statuses: readonly TransportStatus[]): TransportStatus {
  if (statuses.length === 0) return { state: 'connecting' };
  let down: TransportStatus | undefined;
  for (const status of statuses)
    if (SEVERITY[status.state] > SEVERITY[down?.state ?? 'connected']) down = status;
  if (!down) return { state: 'connected' };
  return {
    state: down.state === 'closed' ? 'disconnected' : down.state,
    role: down.role,
    reason: down.reason,
  };
}
