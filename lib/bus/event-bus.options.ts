import type { TransactionClient } from '../interfaces/envelope.interface.js';
import type { Clock } from '../common/clock.js';
import type { Codec } from '../interfaces/codec.interface.js';
import type { HeraldLogger } from '../common/logger.js';
import type { UniqueOptions } from '../common/unique-cache.js';
import type { Transport } from '../interfaces/transport.interface.js';

/** Where and how a handler failed; never the event data. @publicApi */
export interface HandlerErrorContext {
  readonly id: string;
  readonly source: string;
  readonly event: string;
  readonly origin: string;
  /** The handler's name (`Class.method` for `@OnEvent` methods). */
  readonly handler: string;
  readonly attempt: number;
}

/** Options of {@link EventBus}. @publicApi */
export interface EventBusOptions {
  /**
   * What carries events: `new LocalTransport()` for this process alone, or
   * an ipc, pg or redis transport. Required: the bus never picks a transport
   * itself (`EventsModule` picks one from `transport: 'local' | ...`).
   */
  transport: Transport;
  /** @default the strict JSON codec */
  codec?: Codec;
  unique?: UniqueOptions;
  /**
   * Events handled at once. 1 keeps the transport's order end to end; more
   * lets slow async handlers overlap. @default 1
   */
  concurrency?: number;
  /** A handler not settled by then counts as failed (it is not cancelled). @default none */
  handlerTimeoutMs?: number;
  /** Called for every handler failure, after it was logged and counted. */
  onHandlerError?: (error: unknown, context: HandlerErrorContext) => void;
  /** Bound of each buffer: posts waiting for the transport, events waiting for dispatch. @default 10240 */
  maxPending?: number;
  /** @default a logger that writes to console.error for errors and warnings only */
  logger?: HeraldLogger;
  clock?: Clock;
}

/** Options of one `post`. @publicApi */
export interface PostOptions {
  /** One process runs the event; repeats of this key within the TTL are dropped. */
  unique?: string;
  /** An ordered int64 key (pg-hub's key); numbers must be safe integers. */
  key?: readonly (bigint | number)[];
  /** Small string metadata carried with the event (e.g. `traceparent`). */
  headers?: Readonly<Record<string, string>>;
  /**
   * Your database client inside a transaction (pg transport only): the event
   * is sent on it, so it is delivered if and only if the transaction commits.
   * `post` resolves once the notify ran in your transaction; commit after.
   */
  tx?: TransactionClient;
}

/** What `post` resolves to once the transport accepted the event. @publicApi */
export interface PostReceipt {
  readonly id: string;
  /** The transport's own id, where it has one (e.g. a Redis stream entry id). */
  readonly ref?: string;
}
