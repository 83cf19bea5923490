import { EmptyStreamError } from './redis.errors.js';
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- named in TSDoc
import type { ReplicasNotConfirmedError } from './redis.errors.js';
import {
  checkClusterStream,
  checkConnectionOptions,
  CONNECTION_OPTION_KEYS,
  type RedisConnection,
  type RedisConnectionOptions,
} from './redis.connection.js';
import {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_DRAIN_BATCH_SIZE,
  DEFAULT_DRAIN_INITIAL_INTERVAL_MS,
  DEFAULT_DRAIN_MAX_BACKOFF_MS,
  DEFAULT_MAX_LEN,
  DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
  DEFAULT_WRITE_TIMEOUT_MS,
} from './redis.constants.js';
import { encodeStreamEvent, type StreamEvent } from './stream-event.js';
import {
  booleanOption,
  functionOption,
  integerOption,
  nonNegativeNumberOption,
  objectOption,
  oneOfOption,
  optionsObject,
  positiveNumberOption,
} from '../../common/options.validation.js';

/**
 * Text Redis writes around one value of an entry: the entry holds
 * `prefix + value + suffix`. A part that repeats from event to event (a
 * header's members after its id) then crosses the wire once per run of
 * events with the same affix object, not once per event.
 * @publicApi
 */
export interface ValueAffix {
  /** The value's place in the field list `[field, value, ...]`: an odd index. */
  readonly index: number;
  readonly prefix: string;
  readonly suffix: string;
  /**
   * The value goes as the content of a JSON string (the prefix ending and
   * the suffix starting with its quotes): as it is when it needs no escape
   * (no quote, backslash, control or non-ASCII character), else as
   * `JSON.stringify` writes it between the quotes. @default false
   */
  readonly json?: boolean;
}

/**
 * What `encode` returns: `[field, value, ...]`, each name a string, each
 * value a string or a list of strings the entry holds joined (written one
 * after the other into the command: no joined string is made in Node).
 * @publicApi
 */
export type StreamEntryFields = readonly (string | readonly string[])[];

/** Options of {@link StreamPublisher}; defaults are the original's. @publicApi */
export interface StreamPublisherOptions<T = StreamEvent> extends RedisConnectionOptions {
  /** The stream written to. Required, non-empty. */
  stream: string;
  /** Approximate retention, `XADD MAXLEN ~ maxLen`; 0 keeps everything. @default 100000 */
  maxLen?: number;
  /** Events buffered in memory; when full the oldest is dropped. @default 10000 */
  bufferSize?: number;
  /** First pause after a failed write. @default 1000 */
  drainInitialIntervalMs?: number;
  /** Cap of the doubling pause. @default 30000 */
  drainMaxBackoffMs?: number;
  /** How long `close()` keeps draining. @default 5000 */
  shutdownDrainTimeoutMs?: number;
  /** XADDs sent per round trip (one pipeline). @default 1000 */
  drainBatchSize?: number;
  /** A write not answered by then fails and is retried. @default 5000 */
  writeTimeoutMs?: number;
  /**
   * How a batch is sent: `script`, one EVALSHA running XADD per event on
   * the server (far less client CPU); `pipeline`, one XADD command per
   * event. Both keep order and give one result per event; `script` falls
   * back to `pipeline` where scripts are not allowed. @default 'script'
   */
  writeMode?: 'script' | 'pipeline';
  /**
   * Turns an item into XADD fields, a value given whole or in parts
   * ({@link StreamEntryFields}). @default the original's event layout ({@link encodeStreamEvent})
   */
  encode?: (item: T) => StreamEntryFields;
  /**
   * Called after `encode` for the same item: the affix Redis writes around
   * one of its values (a value given whole), or undefined (the values are written as they are).
   * Return the same object for as long as it applies: events go to Redis
   * in runs of one affix object (compared by identity), each run's affix
   * sent once. @default none
   */
  affix?: (item: T) => ValueAffix | undefined;
  /**
   * Encode each event (`encode`, `affix`) when it is written, not when it is
   * published: while an event waits in the buffer and while Redis answers
   * its write, the publisher keeps the item, and none of its fields (they
   * are made again for a retry). For items that live until their write is
   * answered anyway (the redis transport's envelopes, which its posts wait
   * on), that is less memory kept per event in flight, so less for each
   * young-generation collection to copy. An event its encoder then refuses
   * is not written: counted in `failed`, logged, and its `publishAndWait`
   * or `publishAll` result is the encoder's error (`publish` cannot throw
   * it any more). Encoders must give the same entry for the same item each
   * time. @default false
   */
  encodeOnWrite?: boolean;
  /**
   * Write on this connection instead of opening one (it is then not closed
   * by `close()`). It must come from {@link RedisConnection}, which turns off
   * ioredis's offline queue and resends.
   */
  connection?: RedisConnection;
  /**
   * After each batch of XADDs, `WAIT <waitReplicas> <waitTimeoutMs>` on the
   * same node (sent in the same pipeline, so writes use the pipeline path):
   * a post resolves only once that many replicas have its entry, so it
   * survives the loss of its master (replication is asynchronous otherwise).
   * If fewer replicas confirm in time, the post rejects with
   * {@link ReplicasNotConfirmedError} (the entry was written and may or may
   * not survive a failover), counted in `unconfirmed`. @default 0 (no WAIT)
   */
  waitReplicas?: number;
  /** How long one WAIT may block. @default 1000 */
  waitTimeoutMs?: number;
}

/** {@link StreamPublisherOptions} checked, defaults filled in. */
export interface ResolvedStreamPublisherOptions<T> {
  readonly stream: string;
  readonly maxLen: number;
  readonly bufferSize: number;
  readonly drainInitialIntervalMs: number;
  readonly drainMaxBackoffMs: number;
  readonly shutdownDrainTimeoutMs: number;
  readonly drainBatchSize: number;
  readonly writeTimeoutMs: number;
  readonly writeMode: 'script' | 'pipeline';
  readonly encode: (item: T) => StreamEntryFields;
  readonly affix?: (item: T) => ValueAffix | undefined;
  readonly encodeOnWrite: boolean;
  readonly connection?: RedisConnection;
  readonly waitReplicas: number;
  readonly waitTimeoutMs: number;
}

const SCOPE = 'StreamPublisher';

const KEYS: readonly (keyof StreamPublisherOptions & string)[] = [
  ...CONNECTION_OPTION_KEYS,
  'stream',
  'maxLen',
  'bufferSize',
  'drainInitialIntervalMs',
  'drainMaxBackoffMs',
  'shutdownDrainTimeoutMs',
  'drainBatchSize',
  'writeTimeoutMs',
  'writeMode',
  'encode',
  'affix',
  'encodeOnWrite',
  'connection',
  'waitReplicas',
  'waitTimeoutMs',
];

/**
 * Checks a publisher's options in one place: unknown keys refused, every
 * value's type and range checked. A missing or empty stream is the
 * original's {@link EmptyStreamError} (an InvalidOptionsError).
 * @throws InvalidOptionsError naming the option, the rule and the value
 */
export function resolveStreamPublisherOptions<T>(
  input: StreamPublisherOptions<T>,
): ResolvedStreamPublisherOptions<T> {
  if (typeof input?.stream !== 'string' || input.stream === '')
    throw new EmptyStreamError(input?.stream);
  const options = optionsObject<StreamPublisherOptions<T>>(SCOPE, input, KEYS);
  checkConnectionOptions(SCOPE, options);
  objectOption(SCOPE, 'connection', options.connection);
  checkClusterStream(SCOPE, options.stream, {
    cluster: options.cluster ?? (options.connection?.isCluster ? [] : undefined),
  });
  return {
    waitReplicas: integerOption(SCOPE, 'waitReplicas', options.waitReplicas, 0, 0),
    waitTimeoutMs: integerOption(SCOPE, 'waitTimeoutMs', options.waitTimeoutMs, 1000, 0),
    stream: options.stream,
    maxLen: nonNegativeNumberOption(SCOPE, 'maxLen', options.maxLen, DEFAULT_MAX_LEN),
    bufferSize: integerOption(SCOPE, 'bufferSize', options.bufferSize, DEFAULT_BUFFER_SIZE, 1),
    drainInitialIntervalMs: positiveNumberOption(
      SCOPE,
      'drainInitialIntervalMs',
      options.drainInitialIntervalMs,
      DEFAULT_DRAIN_INITIAL_INTERVAL_MS,
    ),
    drainMaxBackoffMs: positiveNumberOption(
      SCOPE,
      'drainMaxBackoffMs',
      options.drainMaxBackoffMs,
      DEFAULT_DRAIN_MAX_BACKOFF_MS,
    ),
    shutdownDrainTimeoutMs: nonNegativeNumberOption(
      SCOPE,
      'shutdownDrainTimeoutMs',
      options.shutdownDrainTimeoutMs,
      DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
    ),
    drainBatchSize: integerOption(
      SCOPE,
      'drainBatchSize',
      options.drainBatchSize,
      DEFAULT_DRAIN_BATCH_SIZE,
      1,
    ),
    writeTimeoutMs: positiveNumberOption(
      SCOPE,
      'writeTimeoutMs',
      options.writeTimeoutMs,
      DEFAULT_WRITE_TIMEOUT_MS,
    ),
    writeMode: oneOfOption(SCOPE, 'writeMode', options.writeMode, ['script', 'pipeline'], 'script'),
    encode: functionOption<(item: T) => StreamEntryFields, (item: T) => StreamEntryFields>(
      SCOPE,
      'encode',
      options.encode,
      encodeStreamEvent as unknown as (item: T) => StreamEntryFields,
    ),
    affix: functionOption<(item: T) => ValueAffix | undefined, undefined>(
      SCOPE,
      'affix',
      options.affix,
      undefined,
    ),
    encodeOnWrite: booleanOption(SCOPE, 'encodeOnWrite', options.encodeOnWrite, false),
    connection: options.connection,
  };
}
