import type { Observable, Subscription } from 'rxjs';
import type { TransportState } from '../../interfaces/transport.interface.js';

/**
 * Folds the states of the connections a Redis Streams server or client uses
 * (its publisher, its readers) into one status: connected when all are,
 * reconnecting as soon as one is not, once it had been connected.
 */
export class ConnectionStates {
  private readonly states = new Map<string, TransportState>();
  private readonly subscriptions: Subscription[] = [];
  private everConnected = false;

  constructor(
    private readonly on: {
      /** All connected; `again` is true after an earlier loss. */
      connected(again: boolean): void;
      reconnecting(): void;
    },
  ) {}

  watch(key: string, status$: Observable<{ readonly state: TransportState }>): void {
    this.states.set(key, 'connecting');
    this.subscriptions.push(
      status$.subscribe(status => {
        this.states.set(key, status.state);
        const states = [...this.states.values()];
        if (states.every(state => state === 'connected')) {
          const again = this.everConnected;
          this.everConnected = true;
          this.on.connected(again);
        } else if (states.some(state => state === 'reconnecting' || state === 'disconnected')) {
          if (this.everConnected) this.on.reconnecting();
        }
      }),
    );
  }

  close(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions.length = 0;
  }
}
