import type { PgHub } from '../../transports/pg/pg.hub.js';
import type { PgHubOptions } from '../../transports/pg/pg.options.js';
import {
  booleanOption,
  invalidOption,
  objectOption,
  optionsObject,
  positiveNumberOption,
  stringOption,
} from '../../common/options.validation.js';
import {
  HERALD_CLIENT_OPTION_KEYS,
  HERALD_SERVER_OPTION_KEYS,
  resolveHeraldClientOptions,
  resolveHeraldServerOptions,
  type ResolvedHeraldClientOptions,
  type ResolvedHeraldServerOptions,
} from '../base/herald.options.js';
import type { HeraldClientOptions, HeraldServerOptions } from '../microservice.interface.js';

/**
 * Options of {@link PgNotifyServer}: a shared `hub` (never stopped by the
 * server), or the options of a hub the server makes and stops.
 * @publicApi
 */
export interface PgNotifyServerOptions extends HeraldServerOptions, Omit<PgHubOptions, 'logger'> {
  /** A PgHub to share (e.g. with the EventsModule pg transport): one LISTEN connection for both. */
  hub?: PgHub;
  /**
   * NOTIFY reaches every replica: each request is claimed (one INSERT into
   * `claimTable`) and only the replica that won it answers. Turn off when
   * one instance alone serves these patterns. @default true
   */
  claimRequests?: boolean;
  /** Claims table (same layout as the EventsModule pg transport's unique claims). @default 'herald_unique_claims' */
  claimTable?: string;
  /** How long a request claim is kept, in ms. @default 60000 */
  claimTtlMs?: number;
}

/** Options of {@link PgNotifyClient}. @publicApi */
export interface PgNotifyClientOptions extends HeraldClientOptions, Omit<PgHubOptions, 'logger'> {
  /** A PgHub to share; never stopped by the client. */
  hub?: PgHub;
}

/** The keys a hub the server or client makes takes (PgHubOptions but `logger`). */
const PG_HUB_OPTION_KEYS = [
  'pool',
  'connectionString',
  'poolConfig',
  'poolSize',
  'reconnectMs',
  'heartbeatMs',
  'maxQueue',
  'batchSize',
  'maxPayloadBytes',
  'applicationName',
  'stopTimeoutMs',
  'name',
] as const satisfies readonly (keyof PgHubOptions)[];

const TABLE_NAME = /^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/;

/** {@link PgNotifyServerOptions} resolved: the shared fields, the claim settings, and the hub's options (when no `hub`). */
export interface ResolvedPgNotifyServerOptions extends ResolvedHeraldServerOptions {
  readonly hub?: PgHub;
  readonly hubOptions: Omit<PgHubOptions, 'logger'>;
  readonly claimRequests: boolean;
  readonly claimTable: string;
  readonly claimTtlMs: number;
}

/** {@link PgNotifyClientOptions} resolved. */
export interface ResolvedPgNotifyClientOptions extends ResolvedHeraldClientOptions {
  readonly hub?: PgHub;
  readonly hubOptions: Omit<PgHubOptions, 'logger'>;
}

/**
 * Resolves the options of {@link PgNotifyServer}: throws `InvalidOptionsError`
 * naming the option, the rule and the value (unknown keys too).
 */
export function resolvePgNotifyServerOptions(
  options: PgNotifyServerOptions | undefined,
): ResolvedPgNotifyServerOptions {
  const scope = 'PgNotifyServer';
  const given = optionsObject<PgNotifyServerOptions>(scope, options, [
    ...HERALD_SERVER_OPTION_KEYS,
    ...PG_HUB_OPTION_KEYS,
    'hub',
    'claimRequests',
    'claimTable',
    'claimTtlMs',
  ]);
  const claimTable = stringOption(scope, 'claimTable', given.claimTable, 'herald_unique_claims');
  if (!TABLE_NAME.test(claimTable)) {
    invalidOption(scope, 'claimTable', 'a lower-case [schema.]table name', claimTable);
  }
  return {
    ...resolveHeraldServerOptions(scope, given),
    ...resolveHub(scope, given),
    claimRequests: booleanOption(scope, 'claimRequests', given.claimRequests, true),
    claimTable,
    claimTtlMs: positiveNumberOption(scope, 'claimTtlMs', given.claimTtlMs, 60_000),
  };
}

/** Resolves the options of {@link PgNotifyClient} (throws `InvalidOptionsError`). */
export function resolvePgNotifyClientOptions(
  options: PgNotifyClientOptions | undefined,
): ResolvedPgNotifyClientOptions {
  const scope = 'PgNotifyClient';
  const given = optionsObject<PgNotifyClientOptions>(scope, options, [
    ...HERALD_CLIENT_OPTION_KEYS,
    ...PG_HUB_OPTION_KEYS,
    'hub',
  ]);
  return { ...resolveHeraldClientOptions(scope, given), ...resolveHub(scope, given) };
}

/**
 * A shared `hub`, or the options of the hub to make, checked here so a bad
 * one is refused in this class's words (the hub's own checks come after).
 */
function resolveHub(
  scope: string,
  given: Omit<PgHubOptions, 'logger'> & { hub?: PgHub },
): { hub?: PgHub; hubOptions: Omit<PgHubOptions, 'logger'> } {
  const { hub, ...rest } = given;
  const hubOptions: Omit<PgHubOptions, 'logger'> = {};
  for (const key of PG_HUB_OPTION_KEYS) {
    if (rest[key] !== undefined) (hubOptions as Record<string, unknown>)[key] = rest[key];
  }
  if (hub !== undefined) {
    if (typeof hub !== 'object' || hub === null || typeof hub.consumer !== 'function') {
      invalidOption(scope, 'hub', 'a PgHub', hub);
    }
    return { hub, hubOptions };
  }
  objectOption(scope, 'pool', given.pool);
  objectOption(scope, 'poolConfig', given.poolConfig);
  stringOption(scope, 'connectionString', given.connectionString, undefined);
  if (given.pool === undefined && !given.connectionString && !given.poolConfig) {
    invalidOption(scope, 'hub', 'given, or a pool, a connectionString or a poolConfig', undefined);
  }
  for (const key of [
    'poolSize',
    'reconnectMs',
    'heartbeatMs',
    'maxQueue',
    'batchSize',
    'maxPayloadBytes',
    'stopTimeoutMs',
  ] as const) {
    positiveNumberOption(scope, key, given[key], undefined);
  }
  stringOption(scope, 'applicationName', given.applicationName, undefined);
  stringOption(scope, 'name', given.name, undefined);
  return { hubOptions };
}
