import { systemClock, type Clock } from '../common/clock.js';
import { jsonCodec } from '../common/json.codec.js';
import { DEFAULT_MAX_PENDING } from '../common/limits.js';
import type { TransactionClient } from '../interfaces/envelope.interface.js';
import type { Codec } from '../interfaces/codec.interface.js';
import { consoleLogger, type HeraldLogger } from '../common/logger.js';
import {
  functionOption,
  integerOption,
  invalidOption,
  objectOption,
  optionsObject,
  positiveNumberOption,
} from '../common/options.validation.js';
import { resolveUniqueOptions, type UniqueOptions } from '../common/unique-cache.js';
import type { Transport } from '../interfaces/transport.interface.js';
import type { EventSchemas } from '../interfaces/standard-schema.interface.js';
import { resolveSchemas } from './event-bus.schemas.js';

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
  /**
   * Standard Schemas (zod, valibot, arktype...) by event, by source:
   * `post` validates the data before sending it (rejects with
   * `EventValidationError` naming the path; nothing sent; the data goes out
   * as given), and every event with a schema is validated again before its
   * handlers run, which receive the schema's output. An event refused there
   * runs no handler: counted in `stats().invalid`, logged without its data
   * (`bus event-invalid`) and nacked as undecodable (redis groups
   * dead-letter it at once; elsewhere it is dropped). See "Typed events".
   * @default none: nothing is validated, nothing costs
   */
  schemas?: EventSchemas;
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

/** Options of one `postLocal`. @publicApi */
export interface LocalPostOptions {
  /**
   * Resolve with every handler's outcome in this process, in registration
   * order (`HandlerOutcome[]`), once all have settled.
   */
  wait?: boolean;
  /** With `wait`: reject with an `AggregateError` of the handlers' errors when any failed. */
  rejectOnError?: boolean;
  /** Small string metadata the handlers see in `event.headers`, as with `post`. */
  headers?: Readonly<Record<string, string>>;
}

/** What `post` resolves to once the transport accepted the event. @publicApi */
export interface PostReceipt {
  readonly id: string;
  /** The transport's own id, where it has one (e.g. a Redis stream entry id). */
  readonly ref?: string;
}

/** {@link EventBusOptions} with every default applied, as the bus uses them. */
export interface ResolvedEventBusOptions {
  readonly transport: Transport;
  readonly codec: Codec;
  readonly unique: { readonly ttlMs: number; readonly cacheSize: number };
  readonly concurrency: number;
  readonly handlerTimeoutMs?: number;
  readonly onHandlerError?: (error: unknown, context: HandlerErrorContext) => void;
  readonly maxPending: number;
  readonly logger: HeraldLogger;
  readonly clock: Clock;
  readonly schemas?: EventSchemas;
}

const SCOPE = 'EventBus';

/** The keys of {@link EventBusOptions}, for the unknown-key check. */
export const EVENT_BUS_OPTION_KEYS = [
  'transport',
  'codec',
  'unique',
  'concurrency',
  'handlerTimeoutMs',
  'onHandlerError',
  'maxPending',
  'logger',
  'clock',
  'schemas',
] as const satisfies readonly (keyof EventBusOptions)[];

function hasMethods(value: unknown, names: readonly string[]): boolean {
  return (
    value !== null &&
    typeof value === 'object' &&
    names.every(name => typeof (value as Record<string, unknown>)[name] === 'function')
  );
}

/**
 * Checks and completes the bus's options in one place; throws
 * `InvalidOptionsError` naming the option, the rule and the value given
 * (`EventBus: concurrency must be an integer >= 1 (got "4", a string)`).
 * `scope` names the caller in messages (`EventsModule` when it builds the bus).
 */
export function resolveEventBusOptions(options: EventBusOptions): ResolvedEventBusOptions {
  const given = optionsObject(SCOPE, options, EVENT_BUS_OPTION_KEYS);
  if (!hasMethods(given.transport, ['connect', 'publish', 'close', 'stats'])) {
    invalidOption(SCOPE, 'transport', 'a Transport object', given.transport);
  }
  return { transport: given.transport, ...resolveEventBusSettings(given, SCOPE) };
}

/**
 * The bus's options but its transport, checked and completed; `EventsModule`
 * calls it before it builds a transport, under its own `scope`. Unknown keys
 * are the caller's to refuse.
 */
export function resolveEventBusSettings(
  given: Omit<EventBusOptions, 'transport'>,
  scope: string,
): Omit<ResolvedEventBusOptions, 'transport'> {
  if (given.codec !== undefined && !hasMethods(given.codec, ['encode', 'decode'])) {
    invalidOption(scope, 'codec', 'a Codec (encode and decode)', given.codec);
  }
  if (given.logger !== undefined && !hasMethods(given.logger, ['log', 'warn', 'error'])) {
    invalidOption(scope, 'logger', 'a logger (log, warn and error)', given.logger);
  }
  if (given.clock !== undefined && !hasMethods(given.clock, ['now'])) {
    invalidOption(scope, 'clock', 'a Clock (now)', given.clock);
  }
  return {
    codec: given.codec ?? jsonCodec,
    // The one unique check, shared with the ipc broker and startBroker.
    unique: resolveUniqueOptions(
      objectOption(scope, 'unique', given.unique) as UniqueOptions | undefined,
      `${scope}: unique`,
    ),
    concurrency: integerOption(scope, 'concurrency', given.concurrency, 1, 1),
    handlerTimeoutMs: positiveNumberOption(
      scope,
      'handlerTimeoutMs',
      given.handlerTimeoutMs,
      undefined,
    ),
    onHandlerError: functionOption<NonNullable<EventBusOptions['onHandlerError']>, undefined>(
      scope,
      'onHandlerError',
      given.onHandlerError,
      undefined,
    ),
    maxPending: integerOption(scope, 'maxPending', given.maxPending, DEFAULT_MAX_PENDING, 1),
    logger: given.logger ?? consoleLogger,
    clock: given.clock ?? systemClock,
    schemas: resolveSchemas(scope, given.schemas),
  };
}

/**
 * How one handler of this process ended, for `postLocal(..., { wait: true })`:
 * `PromiseSettledResult` with the handler's name (`Class.method` for
 * `@OnEvent` methods). @publicApi
 */
export type HandlerOutcome =
  | { readonly handler: string; readonly status: 'fulfilled'; readonly value: unknown }
  | { readonly handler: string; readonly status: 'rejected'; readonly reason: unknown };
