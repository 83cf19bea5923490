import type { RedisConnectionOptions } from '../../transports/redis/redis.connection.js';
import type { ConsumerGroupOptions } from '../../transports/redis/stream.subscriber.js';
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
