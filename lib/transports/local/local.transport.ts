import type { Observable } from 'rxjs';
import { StateMachine } from '../../common/state-machine.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import { TransportClosedError } from '../../common/errors.js';
import { UniqueCache } from '../../common/unique-cache.js';
import type {
  Delivery,
  PublishResult,
  Settlement,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportState,
  TransportStatus,
} from '../../interfaces/transport.interface.js';

const ACCEPTED: PublishResult = Object.freeze({ ok: true });

/** Nothing to lose in between: connecting until the bus connects it, then closed. */
type LocalState = Extract<TransportState, 'connecting' | 'connected' | 'closed'>;
const LOCAL_TRANSITIONS = {
  connecting: ['connected', 'closed'],
  connected: ['closed'],
  closed: [],
} as const satisfies { readonly [K in LocalState]: readonly LocalState[] };

/**
 * The in-process transport, the default: envelopes go straight back to this
 * process's bus, through the same codec as every other transport, so
 * switching transports changes nothing a handler sees. Unique keys are
 * deduplicated within this process.
 * @publicApi
 */
export class LocalTransport implements Transport {
  readonly name = 'local';
  readonly features: TransportFeatures = {
    reach: 'process',
    guarantee: 'once',
    ordering: 'global',
    uniqueScope: 'process',
    redelivers: false,
    loopback: true,
    persistent: false,
  };
  private readonly machine = new StateMachine<LocalState>(
    'local transport',
    'connecting',
    LOCAL_TRANSITIONS,
  );
  readonly status$: Observable<TransportStatus> = this.machine.status$;
  private context?: TransportContext;
  private unique?: UniqueCache;
  private readonly counters = { published: 0, duplicates: 0, acked: 0, nacked: 0 };
  private readonly settle = (settlement: Settlement): void => {
    if (settlement.outcome === 'ack') this.counters.acked++;
    else this.counters.nacked++;
  };

  async connect(context: TransportContext): Promise<void> {
    if (this.machine.is('closed')) throw new TransportClosedError();
    this.context = context;
    this.unique = new UniqueCache(context.unique, context.clock);
    this.machine.setState('connected');
  }

  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    const context = this.context;
    if (!context) {
      const error = new TransportClosedError(
        this.machine.is('closed') ? undefined : 'transport is not connected',
      );
      return batch.map(() => ({ ok: false, error }));
    }
    const results: PublishResult[] = [];
    for (const envelope of batch) {
      this.counters.published++;
      results.push(ACCEPTED);
      if (envelope.unique !== undefined && !this.unique!.claim(envelope.unique)) {
        this.counters.duplicates++;
        context.logger.debug?.(`unique event is duplicate: ${envelope.unique}`);
        continue;
      }
      const delivery: Delivery = { envelope, attempt: 1, settle: this.settle };
      context.deliver(delivery);
    }
    return results;
  }

  stats(): Readonly<Record<string, number>> {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    if (this.machine.is('closed')) return;
    this.context = undefined;
    this.machine.setState('closed');
    this.machine.complete();
  }
}
