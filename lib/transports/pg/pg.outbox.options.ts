import {
  booleanOption,
  integerOption,
  invalidOption,
  nonNegativeNumberOption,
  optionsObject,
  positiveNumberOption,
  stringOption,
} from '../../common/options.validation.js';

/**
 * `pg: { durable: true }` or `pg: { durable: { ... } }`: every event is
 * written to an outbox table in the transaction of its NOTIFY, and each
 * listener reads the table from its own cursor (at-least-once, catch-up
 * after a reconnect or a restart). @publicApi
 */
export interface PgDurableOptions {
  /**
   * This listener's stable name (e.g. the pod name): its cursor outlives
   * restarts, so it catches up on what was committed while it was away.
   * Without it the consumer is this process's alone, starts at the current
   * end and is removed at close. @default none (per process)
   */
  consumer?: string;
  /**
   * The outbox table, `[schema.]name`; the consumers and dead-letter tables
   * are `<name>_consumers` and `<name>_dead`. @default 'herald_outbox'
   */
  table?: string;
  /**
   * Create the three tables (and their index) at connect when missing. With
   * false, run the migration (`pgOutboxMigrationSql()`) yourself; connect
   * then only checks the tables and this role's privileges. @default true
   */
  createTables?: boolean;
  /** Rows per read. @default 1000 */
  readBatch?: number;
  /** Events delivered and not yet settled, at most; reading pauses past it. @default 2000 */
  maxInFlight?: number;
  /** Read this often even without a wake-up NOTIFY, in ms. @default 2000 */
  pollMs?: number;
  /** Deliveries of a nacked event before it is moved to the dead-letter table. @default 5 */
  maxAttempts?: number;
  /** Pause before a nacked event is delivered again, in ms. @default 1000 */
  retryDelayMs?: number;
  /** A consumer whose cursor was not refreshed for this long is removed by the cleanup job, in ms. @default 86400000 (1 day) */
  consumerExpiryMs?: number;
  /** Outbox rows older than this are deleted by the cleanup job, in ms. @default 86400000 (1 day) */
  retentionMs?: number;
  /** At most this many outbox rows are kept per channel (the newest). @default 1000000 */
  retentionCount?: number;
  /** The cleanup job runs this often, in ms (one instance at a time); 0 = never. @default 60000 */
  cleanupIntervalMs?: number;
}

/** {@link PgDurableOptions} resolved. */
export interface ResolvedPgDurableOptions {
  readonly consumer?: string;
  readonly table: string;
  readonly createTables: boolean;
  readonly readBatch: number;
  readonly maxInFlight: number;
  readonly pollMs: number;
  readonly maxAttempts: number;
  readonly retryDelayMs: number;
  readonly consumerExpiryMs: number;
  readonly retentionMs: number;
  readonly retentionCount: number;
  readonly cleanupIntervalMs: number;
}

/** An outbox table name: `[schema.]name`, the name short enough for `<name>_consumers`. */
export const PG_OUTBOX_TABLE_NAME = /^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,52}$/;

/** A consumer name: printable, no spaces, at most 200 characters. */
export const PG_CONSUMER_NAME = /^[A-Za-z0-9_.:@/-]{1,200}$/;

const KEYS: readonly (keyof PgDurableOptions & string)[] = [
  'consumer',
  'table',
  'createTables',
  'readBatch',
  'maxInFlight',
  'pollMs',
  'maxAttempts',
  'retryDelayMs',
  'consumerExpiryMs',
  'retentionMs',
  'retentionCount',
  'cleanupIntervalMs',
];

/**
 * Checks `durable` (true, false, or an options object) and applies the
 * defaults; undefined when durable mode is off. Throws `InvalidOptionsError`
 * naming the option, the rule and the value (unknown keys too).
 */
export function resolvePgDurableOptions(
  value: boolean | PgDurableOptions | undefined,
): ResolvedPgDurableOptions | undefined {
  const scope = 'PgTransport durable';
  if (value === undefined || value === false) return undefined;
  if (value !== true && (typeof value !== 'object' || value === null || Array.isArray(value)))
    invalidOption('PgTransport', 'durable', 'a boolean or an options object', value);
  const given = optionsObject<PgDurableOptions>(scope, value === true ? {} : value, KEYS);
  const consumer = stringOption(scope, 'consumer', given.consumer, undefined);
  if (consumer !== undefined && !PG_CONSUMER_NAME.test(consumer))
    invalidOption(scope, 'consumer', `a name matching ${PG_CONSUMER_NAME}`, consumer);
  const table = stringOption(scope, 'table', given.table, 'herald_outbox');
  if (!PG_OUTBOX_TABLE_NAME.test(table))
    invalidOption(scope, 'table', 'a lower-case [schema.]table name of at most 53 bytes', table);
  const readBatch = integerOption(scope, 'readBatch', given.readBatch, 1000, 1, 100_000);
  return {
    consumer,
    table,
    createTables: booleanOption(scope, 'createTables', given.createTables, true),
    readBatch,
    maxInFlight: integerOption(scope, 'maxInFlight', given.maxInFlight, 2000, 1),
    pollMs: positiveNumberOption(scope, 'pollMs', given.pollMs, 2000),
    maxAttempts: integerOption(scope, 'maxAttempts', given.maxAttempts, 5, 1),
    retryDelayMs: nonNegativeNumberOption(scope, 'retryDelayMs', given.retryDelayMs, 1000),
    consumerExpiryMs: positiveNumberOption(
      scope,
      'consumerExpiryMs',
      given.consumerExpiryMs,
      86_400_000,
    ),
    retentionMs: positiveNumberOption(scope, 'retentionMs', given.retentionMs, 86_400_000),
    retentionCount: integerOption(scope, 'retentionCount', given.retentionCount, 1_000_000, 1),
    cleanupIntervalMs: nonNegativeNumberOption(
      scope,
      'cleanupIntervalMs',
      given.cleanupIntervalMs,
      60_000,
    ),
  };
}
