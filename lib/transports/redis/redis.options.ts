import type { RedisConnectionOptions } from './redis.connection.js';

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
