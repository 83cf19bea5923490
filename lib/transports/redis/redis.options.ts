import {
  integerOption,
  nonNegativeNumberOption,
  oneOfOption,
  optionsObject,
  positiveNumberOption,
  stringOption,
} from '../../common/options.validation.js';
import {
  checkConnectionOptions,
  CONNECTION_OPTION_KEYS,
  type RedisConnectionOptions,
} from './redis.connection.js';
import {
  DEFAULT_TRANSPORT_GROUP,
  DEFAULT_TRANSPORT_READ_COUNT,
  DEFAULT_TRANSPORT_STREAM,
  DEFAULT_UNIQUE_PREFIX,
} from './redis.constants.js';

/** `connect()` rejects if Redis cannot be reached by then. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/**
 * Options of the redis transport (`EventsModule.forRoot({ transport: 'redis', redis })`).
 * Every instance posts to one stream that carries source and event in each
 * entry, so every `@OnEvent` pattern (`'*'` and no pattern included) works.
 * @publicApi
 */
export interface RedisTransportOptions extends RedisConnectionOptions {
  /** The stream every event of the app goes through. @default 'herald:events' */
  stream?: string;
  /**
   * `broadcast`: every instance handles every event (each has its own
   * consumer group). `work-queue`: each event is handled by one instance of
   * the group. @default 'broadcast'
   */
  mode?: 'broadcast' | 'work-queue';
  /**
   * Work queue: the group all instances join. Broadcast: the prefix of each
   * instance's group, `<group>:<instance>`. @default 'herald'
   */
  group?: string;
  /**
   * Broadcast: a stable name for this instance (e.g. the pod name), so its
   * group outlives restarts and it catches up on what it missed. Without it
   * the group is per process and deleted at close. @default none
   */
  instance?: string;
  /**
   * Where a new group starts: `$` (events posted from now on) or `0` (the
   * whole stream). @default '$'
   */
  startId?: string;
  /** Approximate stream retention (XADD MAXLEN ~). @default 100000 */
  maxLen?: number;
  /** Publisher buffer; when full the oldest unwritten event is dropped (its post rejects). @default 10000 */
  bufferSize?: number;
  /** @default 1000 */
  drainInitialIntervalMs?: number;
  /** @default 30000 */
  drainMaxBackoffMs?: number;
  /** @default 5000 */
  shutdownDrainTimeoutMs?: number;
  /** XADDs per round trip. @default 1000 */
  drainBatchSize?: number;
  /** Entries per XREADGROUP. @default 500 */
  readCount?: number;
  /** @default 1000 */
  blockMs?: number;
  /** Entries read and not yet settled before reading pauses. @default 2 × readCount */
  maxInFlight?: number;
  /** A pending entry idle this long is claimed by another instance. @default 60000 */
  minIdleMs?: number;
  /** @default 5000 */
  claimIntervalMs?: number;
  /** Deliveries after which an event goes to the dead-letter stream. @default 5 */
  maxDeliveries?: number;
  /** @default `<stream>:dead` */
  deadLetterStream?: string;
  /** Pause before a nacked event is delivered again. @default 1000 */
  nackRetryDelayMs?: number;
  /** Prefix of the `SET NX PX` keys that run a `unique` event once across instances. @default 'herald:unique' */
  uniquePrefix?: string;
  /** `connect()` rejects if Redis is not reachable by then. @default 30000 */
  connectTimeoutMs?: number;
}

/** {@link RedisTransportOptions} checked, with the transport's own defaults filled in. */
export interface ResolvedRedisTransportOptions extends RedisTransportOptions {
  readonly stream: string;
  readonly mode: 'broadcast' | 'work-queue';
  readonly group: string;
  readonly uniquePrefix: string;
  readonly readCount: number;
  readonly connectTimeoutMs: number;
}

const SCOPE = 'RedisTransport';

const KEYS: readonly (keyof RedisTransportOptions & string)[] = [
  ...CONNECTION_OPTION_KEYS,
  'stream',
  'mode',
  'group',
  'instance',
  'startId',
  'maxLen',
  'bufferSize',
  'drainInitialIntervalMs',
  'drainMaxBackoffMs',
  'shutdownDrainTimeoutMs',
  'drainBatchSize',
  'readCount',
  'blockMs',
  'maxInFlight',
  'minIdleMs',
  'claimIntervalMs',
  'maxDeliveries',
  'deadLetterStream',
  'nackRetryDelayMs',
  'uniquePrefix',
  'connectTimeoutMs',
];

/**
 * Checks the redis transport's options (one place, issue 14): unknown keys
 * refused, each value's type and range checked, naming the option, the rule
 * and the value. @throws InvalidOptionsError
 */
export function resolveRedisTransportOptions(
  input: RedisTransportOptions | undefined,
): ResolvedRedisTransportOptions {
  const options = optionsObject(SCOPE, input, KEYS);
  checkConnectionOptions(SCOPE, options);
  for (const name of ['instance', 'startId', 'deadLetterStream'] as const)
    stringOption(SCOPE, name, options[name], undefined);
  for (const name of [
    'bufferSize',
    'drainInitialIntervalMs',
    'drainMaxBackoffMs',
    'drainBatchSize',
    'blockMs',
    'maxInFlight',
    'minIdleMs',
    'claimIntervalMs',
    'maxDeliveries',
  ] as const)
    positiveNumberOption(SCOPE, name, options[name], undefined);
  for (const name of ['maxLen', 'shutdownDrainTimeoutMs', 'nackRetryDelayMs'] as const)
    nonNegativeNumberOption(SCOPE, name, options[name], undefined);
  return {
    ...options,
    stream: stringOption(SCOPE, 'stream', options.stream, DEFAULT_TRANSPORT_STREAM),
    mode: oneOfOption(SCOPE, 'mode', options.mode, ['broadcast', 'work-queue'], 'broadcast'),
    group: stringOption(SCOPE, 'group', options.group, DEFAULT_TRANSPORT_GROUP),
    uniquePrefix: stringOption(SCOPE, 'uniquePrefix', options.uniquePrefix, DEFAULT_UNIQUE_PREFIX),
    readCount: integerOption(
      SCOPE,
      'readCount',
      options.readCount,
      DEFAULT_TRANSPORT_READ_COUNT,
      1,
    ),
    connectTimeoutMs: positiveNumberOption(
      SCOPE,
      'connectTimeoutMs',
      options.connectTimeoutMs,
      DEFAULT_CONNECT_TIMEOUT_MS,
    ),
  };
}
