import type { Pool, PoolConfig } from 'pg';
import type { HeraldLogger } from '../../common/logger.js';
import { silentLogger } from '../../common/logger.js';
import {
  functionOption,
  invalidOption,
  objectOption,
  optionsObject,
  positiveNumberOption,
  integerOption,
  stringOption,
} from '../../common/options.validation.js';
import { PG_HUB_DEFAULTS, PG_NOTIFY_MAX_PAYLOAD } from './pg.constants.js';

/**
 * Options of a `PgHub`. Give a `pool` you own (the hub never ends it),
 * or a `connectionString` / `poolConfig` and the hub makes and ends its own.
 * @publicApi
 */
export interface PgHubOptions {
  /**
   * A node-postgres pool, for notifies; the LISTEN connection is a client of
   * its own made with the pool's settings, never one of the pool's.
   */
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

/** Every key of {@link PgHubOptions}: for classes that pass some of theirs on to a hub. @publicApi */
export const PG_HUB_OPTION_KEYS: readonly (keyof PgHubOptions & string)[] = [
  'pool',
  'connectionString',
  'poolConfig',
  'poolSize',
  'reconnectMs',
  'heartbeatMs',
  'heartbeatTimeoutMs',
  'maxQueue',
  'batchSize',
  'maxPayloadBytes',
  'applicationName',
  'stopTimeoutMs',
  'logger',
  'name',
];

/**
 * Keys of the pg microservice server's and client's options, which (on main
 * today) pass all their options on to the hub they make: tolerated and
 * ignored here until they pass only the hub's keys (PG_HUB_OPTION_KEYS);
 * then this list goes.
 */
const MICROSERVICE_PASS_THROUGH_KEYS = [
  'hub',
  'startup',
  'connectTimeoutMs',
  'closeTimeoutMs',
  'requestTimeoutMs',
  'serializer',
  'deserializer',
  'claimRequests',
  'claimTable',
  'claimTtlMs',
] as const;

/** {@link PgHubOptions} with every default applied. */
export interface ResolvedPgHubOptions {
  readonly name: string;
  readonly logger: HeraldLogger;
  readonly pool?: Pool;
  readonly connectionString?: string;
  readonly poolConfig?: PoolConfig;
  readonly poolSize: number;
  readonly reconnectMs: number;
  readonly heartbeatMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxQueue: number;
  readonly batchSize: number;
  readonly maxPayloadBytes: number;
  readonly applicationName: string;
  readonly stopTimeoutMs: number;
}

/**
 * Checks a hub's options and applies the defaults; throws
 * `InvalidOptionsError` naming the option, the rule and the value (unknown
 * keys too).
 */
export function resolvePgHubOptions(options: PgHubOptions | undefined): ResolvedPgHubOptions {
  const scope = 'PgHub';
  const given = optionsObject<PgHubOptions>(scope, options, [
    ...PG_HUB_OPTION_KEYS,
    ...(MICROSERVICE_PASS_THROUGH_KEYS as readonly string[] as (keyof PgHubOptions & string)[]),
  ]);
  const pool = objectOption(scope, 'pool', given.pool) as Pool | undefined;
  if (pool !== undefined && typeof pool.query !== 'function')
    invalidOption(scope, 'pool', 'a pg Pool', pool);
  const connectionString = stringOption(
    scope,
    'connectionString',
    given.connectionString,
    undefined,
  );
  const poolConfig = objectOption(scope, 'poolConfig', given.poolConfig) as PoolConfig | undefined;
  if (!pool && !connectionString && !poolConfig) {
    invalidOption(scope, 'options', 'given a pool, a connectionString or a poolConfig', options);
  }
  const logger = given.logger ?? silentLogger;
  if (typeof logger !== 'object' || logger === null)
    invalidOption(scope, 'logger', 'a logger', logger);
  functionOption(scope, 'logger.warn', logger.warn, undefined);
  const heartbeatMs = positiveNumberOption(
    scope,
    'heartbeatMs',
    given.heartbeatMs,
    PG_HUB_DEFAULTS.heartbeatMs,
  );
  return {
    name: stringOption(scope, 'name', given.name, 'pg-hub'),
    logger,
    pool,
    connectionString,
    poolConfig,
    poolSize: integerOption(scope, 'poolSize', given.poolSize, PG_HUB_DEFAULTS.poolSize, 1),
    reconnectMs: positiveNumberOption(
      scope,
      'reconnectMs',
      given.reconnectMs,
      PG_HUB_DEFAULTS.reconnectMs,
    ),
    heartbeatMs,
    heartbeatTimeoutMs: positiveNumberOption(
      scope,
      'heartbeatTimeoutMs',
      given.heartbeatTimeoutMs,
      Math.min(heartbeatMs, PG_HUB_DEFAULTS.heartbeatTimeoutMs),
    ),
    maxQueue: integerOption(scope, 'maxQueue', given.maxQueue, PG_HUB_DEFAULTS.maxQueue, 1),
    batchSize: integerOption(scope, 'batchSize', given.batchSize, PG_HUB_DEFAULTS.batchSize, 1),
    maxPayloadBytes: integerOption(
      scope,
      'maxPayloadBytes',
      given.maxPayloadBytes,
      PG_NOTIFY_MAX_PAYLOAD,
      1,
    ),
    applicationName: stringOption(
      scope,
      'applicationName',
      given.applicationName,
      PG_HUB_DEFAULTS.applicationName,
    ),
    stopTimeoutMs: positiveNumberOption(
      scope,
      'stopTimeoutMs',
      given.stopTimeoutMs,
      PG_HUB_DEFAULTS.stopTimeoutMs,
    ),
  };
}
