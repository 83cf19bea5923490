import type { Observable } from 'rxjs';
import type { Clock } from '../common/clock.js';
import type { Envelope } from './envelope.interface.js';
import type { HeraldLogger } from '../common/logger.js';

/**
 * What a transport promises, so the bus, the docs and the conformance suite
 * can act on it. @publicApi
 */
export interface TransportFeatures {
  /** Who receives a post: this process, the processes of this host, or every instance sharing a server. */
  readonly reach: 'process' | 'host' | 'network';
  /** `once` (local), `effectively-once` (ipc while the broker lives), `at-most-once` (pg), `at-least-once` (redis groups). */
  readonly guarantee: 'once' | 'effectively-once' | 'at-most-once' | 'at-least-once';
  /**
   * `global`: every receiver sees all posts in one order. `per-sender`: one
   * sender's posts arrive in posting order. `none`: no promise.
   */
  readonly ordering: 'global' | 'per-sender' | 'none';
  /** Where a `unique` key is deduplicated and run once. */
  readonly uniqueScope: 'process' | 'host' | 'network';
  /** Largest encoded payload accepted, in bytes; undefined = no limit of the transport's own. */
  readonly maxPayloadBytes?: number;
  /** True when a nack makes the transport deliver the envelope again. */
  readonly redelivers: boolean;
  /** True when the sender's own process receives what it posts (all built-in transports). */
  readonly loopback: boolean;
  /** True when envelopes survive a restart of every process (redis streams). */
  readonly persistent: boolean;
  /**
   * True when a post may name the poster's database transaction
   * (`post(..., { tx })`): the event is sent if and only if it commits (pg).
   * A post with `tx` on another transport is refused.
   */
  readonly postsInTransaction?: boolean;
}

/** @publicApi */
export type TransportState =
  'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';

/**
 * A connection status change. `role` is transport-specific (the ipc
 * transport says `broker` or `worker`). @publicApi
 */
export interface TransportStatus {
  readonly state: TransportState;
  readonly role?: string;
  /** Why the state changed, when it changed because of a failure. */
  readonly reason?: string;
}

/** How a delivery ended. A nack carries the reason. @publicApi */
export type Settlement =
  { readonly outcome: 'ack' } | { readonly outcome: 'nack'; readonly error: unknown };

/**
 * One envelope handed to the bus. The bus calls `settle` exactly once, after
 * every handler settled: at-least-once transports acknowledge only then, and
 * redeliver (or dead-letter) on a nack. @publicApi
 */
export interface Delivery {
  readonly envelope: Envelope;
  /** 1 on first delivery, more on redeliveries. */
  readonly attempt: number;
  settle(settlement: Settlement): void;
}

/** What the bus gives a transport when it connects. @publicApi */
export interface TransportContext {
  /** Hand an envelope to the bus. Never throws; the bus buffers until it starts. */
  deliver(delivery: Delivery): void;
  readonly logger: HeraldLogger;
  /** The bus's unique settings, for transports that deduplicate themselves. */
  readonly unique: { readonly ttlMs: number; readonly cacheSize: number };
  readonly clock: Clock;
}

/** The fate of one envelope of a published batch. @publicApi */
export type PublishResult =
  | {
      readonly ok: true;
      /** The transport's own id, e.g. a stream entry id. */ readonly ref?: string;
    }
  | { readonly ok: false; readonly error: Error };

/**
 * The seam between the bus and a wire. Implement it to bring your own
 * transport: pass the instance as `EventsModule.forRoot({ transport })`.
 *
 * Rules a transport keeps:
 * - `publish` resolves (never rejects for one bad envelope) with one result
 *   per envelope, once the transport has accepted each (sent, acknowledged by
 *   a broker, written to a stream). Successive calls keep their order.
 * - Envelopes it receives go to `context.deliver`, each settled by the bus.
 * - Errors are reported on `status$` and in the log, never thrown at random.
 * - After `close()` resolves, nothing is delivered and `publish` yields
 *   {@link TransportClosedError} results.
 * @publicApi
 */
export interface Transport {
  /** A short name for logs and stats (`local`, `ipc`, `pg`, `redis`). */
  readonly name: string;
  readonly features: TransportFeatures;
  /** Connection state changes; replays the current state to new subscribers. */
  readonly status$: Observable<TransportStatus>;
  /** Start the transport; resolves when it can publish and deliver. */
  connect(context: TransportContext): Promise<void>;
  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]>;
  /**
   * The most posts the bus hands one {@link publish} (1 to 1000; default
   * 1000). A post settles when its whole batch was published, so a
   * transport that writes one batch while the next is being posted asks
   * for smaller ones.
   */
  readonly publishBatchSize?: number;
  /** Stop taking new deliveries in (shutdown step one); publishing still works. */
  stopIntake?(): Promise<void>;
  /** Counters and gauges, e.g. `published`, `delivered`, `acked`, `nacked`, `queueHighWater`. */
  stats(): Readonly<Record<string, number>>;
  /** Flush what was published, release connections, end `status$`. */
  close(): Promise<void>;
}
