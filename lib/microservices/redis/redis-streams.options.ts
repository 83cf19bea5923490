import {
  checkConnectionOptions,
  type RedisConnectionOptions,
} from '../../transports/redis/redis.connection.js';
import type { ConsumerGroupOptions } from '../../transports/redis/stream.subscriber.js';
import { GROUP_KEYS } from '../../transports/redis/stream.subscriber.options.js';
import {
  integerOption,
  nonNegativeNumberOption,
  objectOption,
  optionsObject,
  positiveNumberOption,
  stringOption,
} from '../../common/options.validation.js';
import {
  countOption,
  HERALD_CLIENT_OPTION_KEYS,
  HERALD_SERVER_OPTION_KEYS,
  resolveHeraldClientOptions,
  resolveHeraldServerOptions,
  type ResolvedHeraldClientOptions,
  type ResolvedHeraldServerOptions,
} from '../base/herald.options.js';
import type { HeraldClientOptions, HeraldServerOptions } from '../microservice.interface.js';

/** Where every pattern's stream lives: `<streamPrefix><route>`. @default 'nest:' */
export const DEFAULT_STREAM_PREFIX = 'nest:';
/** The consumer group of the servers. */
export const DEFAULT_MICROSERVICE_GROUP = 'nest-microservice';
/** Entries per read, as the redis transport reads. */
export const DEFAULT_MICROSERVICE_READ_COUNT = 500;
/** Handlers running at once per pattern. */
export const DEFAULT_MICROSERVICE_CONCURRENCY = 32;
/** A reply stream outlives a client that stopped refreshing it by this much. */
export const DEFAULT_REPLY_TTL_MS = 300_000;
/** Replies kept per reply stream, at most (XADD MAXLEN ~). */
export const DEFAULT_REPLY_MAX_LEN = 1000;

/** Options of {@link RedisStreamsServer}. @publicApi */
export interface RedisStreamsServerOptions
  extends HeraldServerOptions, Omit<RedisConnectionOptions, 'logger'> {
  /** A pattern's stream is `<streamPrefix><route>` (an object pattern's route is its key-sorted JSON). @default 'nest:' */
  streamPrefix?: string;
  /** The consumer group: instances of one service share it, so each entry goes to one of them. @default 'nest-microservice' */
  group?: string;
  /**
   * The rest of the group settings of the redis transport's subscriber:
   * `consumer` (default `<host>-<pid>-<random>`), `startId` (default `$`),
   * `minIdleMs` (60000), `claimIntervalMs` (5000), `maxDeliveries` (5),
   * `deadLetterStream` (default `<stream>:dead`), `nackRetryDelayMs` (1000).
   */
  groupOptions?: Omit<ConsumerGroupOptions, 'name'>;
  /** Entries per read (at most twice as many read and not yet acknowledged). @default 500 */
  count?: number;
  /** How long one read blocks. @default 1000 */
  blockMs?: number;
  /**
   * Handlers running at once per pattern. Nest's own transports run every
   * message's handler as it arrives; 32 keeps that feel with a bound. Set 1
   * for strict stream order (one entry after the other). @default 32
   */
  concurrency?: number;
  /** Replies kept per reply stream (XADD MAXLEN ~). @default 1000 */
  replyMaxLen?: number;
}

/** Options of {@link RedisStreamsClient}. @publicApi */
export interface RedisStreamsClientOptions
  extends HeraldClientOptions, Omit<RedisConnectionOptions, 'logger'> {
  /** Must match the servers'. @default 'nest:' */
  streamPrefix?: string;
  /** Approximate retention of the pattern streams written to (XADD MAXLEN ~). @default 100000 */
  maxLen?: number;
  /** Events and requests buffered while Redis is away; the oldest is dropped when full. @default 10000 */
  bufferSize?: number;
  /** How long one read of the reply stream blocks. @default 1000 */
  blockMs?: number;
  /**
   * The reply stream and its cursor expire this long after the client stops
   * refreshing them (every third of it), so a client that crashed leaves
   * nothing behind; `close()` deletes them at once. @default 300000
   */
  replyTtlMs?: number;
}

/** {@link RedisStreamsServerOptions} resolved. */
export interface ResolvedRedisStreamsServerOptions extends ResolvedHeraldServerOptions {
  readonly url?: string;
  readonly redis?: RedisStreamsServerOptions['redis'];
  readonly cluster?: RedisConnectionOptions['cluster'];
  readonly clusterOptions?: RedisConnectionOptions['clusterOptions'];
  readonly streamPrefix: string;
  readonly group: string;
  readonly groupOptions: Omit<ConsumerGroupOptions, 'name'>;
  readonly count: number;
  readonly blockMs?: number;
  readonly concurrency: number;
  readonly replyMaxLen: number;
}

/** {@link RedisStreamsClientOptions} resolved. */
export interface ResolvedRedisStreamsClientOptions extends ResolvedHeraldClientOptions {
  readonly url?: string;
  readonly redis?: RedisStreamsClientOptions['redis'];
  readonly cluster?: RedisConnectionOptions['cluster'];
  readonly clusterOptions?: RedisConnectionOptions['clusterOptions'];
  readonly streamPrefix: string;
  readonly maxLen?: number;
  readonly bufferSize?: number;
  readonly blockMs?: number;
  readonly replyTtlMs: number;
}

/** The subscriber's group keys but `name`: the server names a group per pattern. */
const GROUP_OPTION_KEYS = GROUP_KEYS.filter(
  (key): key is Exclude<keyof ConsumerGroupOptions & string, 'name'> => key !== 'name',
);

/**
 * Resolves the options of {@link RedisStreamsServer}: throws
 * `InvalidOptionsError` naming the option, the rule and the value (unknown
 * keys too, `groupOptions`' included), at construction rather than at listen.
 */
export function resolveRedisStreamsServerOptions(
  options: RedisStreamsServerOptions | undefined,
): ResolvedRedisStreamsServerOptions {
  const scope = 'RedisStreamsServer';
  const given = optionsObject<RedisStreamsServerOptions>(scope, options, [
    ...HERALD_SERVER_OPTION_KEYS,
    'url',
    'redis',
    'cluster',
    'clusterOptions',
    'streamPrefix',
    'group',
    'groupOptions',
    'count',
    'blockMs',
    'concurrency',
    'replyMaxLen',
  ]);
  const groupOptions = optionsObject<Omit<ConsumerGroupOptions, 'name'>>(
    `${scope}: groupOptions`,
    objectOption(scope, 'groupOptions', given.groupOptions) as
      Omit<ConsumerGroupOptions, 'name'> | undefined,
    GROUP_OPTION_KEYS,
  );
  const groupScope = `${scope}: groupOptions`;
  stringOption(groupScope, 'consumer', groupOptions.consumer, undefined);
  stringOption(groupScope, 'startId', groupOptions.startId, undefined);
  stringOption(groupScope, 'deadLetterStream', groupOptions.deadLetterStream, undefined);
  for (const key of [
    'minIdleMs',
    'claimIntervalMs',
    'handlerTimeoutMs',
    'consumerTimeoutMs',
  ] as const) {
    positiveNumberOption(groupScope, key, groupOptions[key], undefined);
  }
  nonNegativeNumberOption(groupScope, 'nackRetryDelayMs', groupOptions.nackRetryDelayMs, undefined);
  nonNegativeNumberOption(
    groupScope,
    'checkConsumersIntervalMs',
    groupOptions.checkConsumersIntervalMs,
    undefined,
  );
  if (groupOptions.maxDeliveries !== undefined) {
    countOption(groupScope, 'maxDeliveries', groupOptions.maxDeliveries, 1);
  }
  return {
    ...resolveHeraldServerOptions(scope, given),
    ...resolveConnection(scope, given),
    streamPrefix: stringOption(scope, 'streamPrefix', given.streamPrefix, DEFAULT_STREAM_PREFIX),
    group: stringOption(scope, 'group', given.group, DEFAULT_MICROSERVICE_GROUP),
    groupOptions,
    count: countOption(scope, 'count', given.count, DEFAULT_MICROSERVICE_READ_COUNT),
    blockMs: positiveNumberOption(scope, 'blockMs', given.blockMs, undefined),
    concurrency: countOption(
      scope,
      'concurrency',
      given.concurrency,
      DEFAULT_MICROSERVICE_CONCURRENCY,
    ),
    replyMaxLen: integerOption(scope, 'replyMaxLen', given.replyMaxLen, DEFAULT_REPLY_MAX_LEN, 0),
  };
}

/** Resolves the options of {@link RedisStreamsClient} (throws `InvalidOptionsError`). */
export function resolveRedisStreamsClientOptions(
  options: RedisStreamsClientOptions | undefined,
): ResolvedRedisStreamsClientOptions {
  const scope = 'RedisStreamsClient';
  const given = optionsObject<RedisStreamsClientOptions>(scope, options, [
    ...HERALD_CLIENT_OPTION_KEYS,
    'url',
    'redis',
    'cluster',
    'clusterOptions',
    'streamPrefix',
    'maxLen',
    'bufferSize',
    'blockMs',
    'replyTtlMs',
  ]);
  const replyTtlMs = integerOption(
    scope,
    'replyTtlMs',
    given.replyTtlMs,
    DEFAULT_REPLY_TTL_MS,
    1000,
  );
  return {
    ...resolveHeraldClientOptions(scope, given),
    ...resolveConnection(scope, given),
    streamPrefix: stringOption(scope, 'streamPrefix', given.streamPrefix, DEFAULT_STREAM_PREFIX),
    maxLen:
      given.maxLen === undefined ? undefined : integerOption(scope, 'maxLen', given.maxLen, 0, 0),
    bufferSize:
      given.bufferSize === undefined
        ? undefined
        : countOption(scope, 'bufferSize', given.bufferSize, 1),
    blockMs: positiveNumberOption(scope, 'blockMs', given.blockMs, undefined),
    replyTtlMs,
  };
}

/** The connection options of a server's or client's streams, from its resolved options. */
export function connectionOptions(
  resolved: Pick<ResolvedRedisStreamsServerOptions, 'url' | 'redis' | 'cluster' | 'clusterOptions'>,
  logger: RedisConnectionOptions['logger'],
): RedisConnectionOptions {
  const { url, redis, cluster, clusterOptions } = resolved;
  return { url, redis, cluster, clusterOptions, logger };
}

function resolveConnection(
  scope: string,
  given: Omit<RedisConnectionOptions, 'logger'>,
): Pick<ResolvedRedisStreamsServerOptions, 'url' | 'redis' | 'cluster' | 'clusterOptions'> {
  // cluster and clusterOptions are checked with the connection options of each stream's reader.
  checkConnectionOptions(scope, { cluster: given.cluster, clusterOptions: given.clusterOptions });
  return {
    url: stringOption(scope, 'url', given.url, undefined),
    redis: objectOption(scope, 'redis', given.redis) as RedisConnectionOptions['redis'],
    cluster: given.cluster,
    clusterOptions: given.clusterOptions,
  };
}
