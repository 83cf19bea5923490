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

/**
 * One packed list of accepted results per batch size, never handed out:
 * {@link accepted} copies it.
 */
const acceptedTemplates = new Map<number, PublishResult[]>();

/**
 * `n` accepted results, a fresh list per batch: `LocalTransport` is public, so a
 * list shared between batches could be changed by one caller for every later
 * batch (the type says read-only, JavaScript does not). Not frozen either,
 * because V8 reads the elements of a frozen array through its generic keyed
 * load, a builtin call for each result the outbox reads (78 instructions per
 * post, callgrind); one packed array per batch is a few per post. Copied
 * (`slice`, a builtin: packed as its template) from a template kept per
 * size rather than filled by a loop here: a cold app's first batches ran
 * that loop in the interpreter and had V8 compile it twice (on-stack
 * replacement, then the function), issue 16.
 */
function accepted(n: number): readonly PublishResult[] {
  let template = acceptedTemplates.get(n);
  if (template === undefined) {
    template = [];
    for (let i = 0; i < n; i++) template.push(ACCEPTED);
    // Bounded: the outbox publishes at most 1000 per batch, other callers may not.
    if (acceptedTemplates.size < 1024) acceptedTemplates.set(n, template);
  }
  return template.slice();
}

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

  /** Hands each envelope back to the bus, in the caller's turn; every one is accepted. */
  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    const context = this.context;
    if (!context) {
      const error = new TransportClosedError(
        this.machine.is('closed') ? undefined : 'transport is not connected',
      );
      return Promise.resolve(batch.map(() => ({ ok: false, error })));
    }
    const { counters, settle } = this;
    // Counted before delivering: a handler that reads stats() sees its own post.
    counters.published += batch.length;
    for (let i = 0; i < batch.length; i++) {
      const envelope = batch[i];
      if (envelope.unique !== undefined && !this.unique!.claim(envelope.unique)) {
        counters.duplicates++;
        context.logger.debug?.(`unique event is duplicate: ${envelope.unique}`);
        continue;
      }
      const delivery: Delivery = { envelope, attempt: 1, settle };
      context.deliver(delivery);
    }
    return Promise.resolve(accepted(batch.length));
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
