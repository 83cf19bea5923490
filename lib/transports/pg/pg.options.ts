import type { Pool, PoolConfig } from 'pg';
import type { HeraldLogger } from '../../common/logger.js';

/**
 * Options of a `PgHub`. Give a `pool` you own (the hub never ends it),
 * or a `connectionString` / `poolConfig` and the hub makes and ends its own.
 * @publicApi
 */
export interface PgHubOptions {
  /** A node-postgres pool; the LISTEN connection is drawn from it and held. */
  pool?: Pool;
  /** Used when no `pool` is given. */
  connectionString?: string;
  /** Extra settings of the hub's own pool (when no `pool` is given). */
  poolConfig?: PoolConfig;
  /**
   * Size of the hub's own pool, for notifies (and the pg transport's claims).
   * The LISTEN connection is never one of the pool's: it is a client of its
   * own, made with the pool's settings. @default 3
   */
  poolSize?: number;
  /** Wait between connection attempts, in ms (with +-25% jitter). @default 1000 */
  reconnectMs?: number;
  /**
   * Interval of the cheap query (`SELECT 1`) on the LISTEN connection that
   * finds a dead peer, in ms. A peer gone silent without a reset is noticed
   * within `heartbeatMs + heartbeatTimeoutMs` (8 s by default). @default 5000
   */
  heartbeatMs?: number;
  /** How long the heartbeat query may take before the connection counts as lost, in ms. @default min(heartbeatMs, 3000) */
  heartbeatTimeoutMs?: number;
  /** Notifies waiting to be sent, at most; one more throws `QueueFullError`. @default 10240 */
  maxQueue?: number;
  /** Notifies sent in one statement (one transaction), at most. @default 1000 */
  batchSize?: number;
  /**
   * Largest payload in bytes. PostgreSQL's limit is 7999 on a default build;
   * raise it only for a server built with a larger block size. @default 7999
   */
  maxPayloadBytes?: number;
  /**
   * `application_name` of the hub's own pool; the LISTEN connection sets
   * `<applicationName>/listen`, so it can be told apart in `pg_stat_activity`.
   * @default 'herald-pg-hub'
   */
  applicationName?: string;
  /** How long `stop({ wait: true })` waits for queued notifies, in ms. @default 5000 */
  stopTimeoutMs?: number;
  /** A logger (Nest's `Logger` fits); silent when absent. */
  logger?: HeraldLogger;
  /** A symbolic name, exposed as `hub.name`. @default 'pg-hub' */
  name?: string;
}
