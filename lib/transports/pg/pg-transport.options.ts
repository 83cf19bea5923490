import type { HeraldLogger } from '../../common/logger.js';
import {
  integerOption,
  invalidOption,
  optionsObject,
  positiveNumberOption,
  stringOption,
} from '../../common/options.validation.js';
import { validateTopic } from './pg.codec.js';
import type { PgHub } from './pg.hub.js';
import { PG_HUB_OPTION_KEYS, type PgHubOptions } from './pg.options.js';
import { PG_TABLE_NAME } from './pg.unique-claims.js';
import {
  resolvePgDurableOptions,
  type PgDurableOptions,
  type ResolvedPgDurableOptions,
} from './pg.outbox.options.js';

/**
 * Options of the EventsModule pg transport (`forRoot({ transport: 'pg', pg })`).
 * Either `hub` (shared, e.g. with a microservice server; the transport never
 * stops it) or the options of a hub the transport owns.
 * @publicApi
 */
export interface PgTransportOptions extends PgHubOptions {
  /** A running or not-yet-started hub to share. */
  hub?: PgHub;
  /** The channel herald envelopes travel on. @default 'herald' */
  channel?: string;
  /**
   * More channels to LISTEN to for plain pg-hub events (triggers, Go or Node
   * pg-hub services). Each reaches handlers as source = channel, event =
   * `value.op` when it is a non-empty string, else `'notify'`.
   */
  topics?: readonly string[];
  /** Table of `unique` claims, `[schema.]name` (an UNLOGGED table created when first needed). @default 'herald_unique' */
  uniqueTable?: string;
  /** Claims expired for longer than this are deleted, checked this often, in ms. @default 60000 */
  uniquePurgeMs?: number;
  /** Longest wait of one `unique` claim for a row lock, in ms; a claim that times out drops its event (counted in `claimErrors`). @default 5000 */
  claimTimeoutMs?: number;
  /**
   * Unique events waiting for their claim, at most; one more is dropped,
   * counted in `claimsDropped` and logged. Plain events never wait. @default 10000
   */
  maxPendingClaims?: number;
  /**
   * At-least-once through an outbox table (see the README, "Durable mode"):
   * each post is a row written in the transaction of its NOTIFY, and each
   * listener reads the table from its own cursor, catching up after a
   * reconnect or a restart. `true` for the defaults. @default false
   */
  durable?: boolean | PgDurableOptions;
}

/** {@link PgTransportOptions} resolved: the transport's own, and the hub's to pass on. */
export interface ResolvedPgTransportOptions {
  readonly hub?: PgHub;
  /** The options of the hub to make (when no `hub` is given), unchecked here: the hub checks them. */
  readonly hubOptions: PgHubOptions;
  readonly channel: string;
  readonly topics: readonly string[];
  readonly uniqueTable: string;
  readonly uniquePurgeMs: number;
  readonly claimTimeoutMs: number;
  readonly maxPendingClaims: number;
  readonly logger?: HeraldLogger;
  /** Durable mode's options, undefined when off. */
  readonly durable?: ResolvedPgDurableOptions;
}

const TRANSPORT_KEYS = [
  'hub',
  'channel',
  'topics',
  'uniqueTable',
  'uniquePurgeMs',
  'claimTimeoutMs',
  'maxPendingClaims',
  'durable',
] as const;

/**
 * Checks the pg transport's options and applies the defaults; throws
 * `InvalidOptionsError` naming the option, the rule and the value (unknown
 * keys too). The hub's own options are checked by the hub.
 */
export function resolvePgTransportOptions(
  options: PgTransportOptions | undefined,
): ResolvedPgTransportOptions {
  const scope = 'PgTransport';
  const given = optionsObject<PgTransportOptions>(scope, options, [
    ...TRANSPORT_KEYS,
    ...PG_HUB_OPTION_KEYS,
  ]);
  const channel = validateTopic(stringOption(scope, 'channel', given.channel, 'herald'));
  if (given.topics !== undefined && !Array.isArray(given.topics))
    invalidOption(scope, 'topics', 'an array of topics', given.topics);
  const topics = [...new Set((given.topics ?? []).map(validateTopic))].filter(t => t !== channel);
  const uniqueTable = stringOption(scope, 'uniqueTable', given.uniqueTable, 'herald_unique');
  if (!PG_TABLE_NAME.test(uniqueTable))
    invalidOption(scope, 'uniqueTable', 'a lower-case [schema.]table name', uniqueTable);
  const hub = given.hub;
  if (hub !== undefined && (typeof hub !== 'object' || typeof hub?.rawConsumer !== 'function'))
    invalidOption(scope, 'hub', 'a PgHub', hub);
  const hubOptions: Record<string, unknown> = {};
  for (const key of PG_HUB_OPTION_KEYS) {
    if (given[key] !== undefined) hubOptions[key] = given[key];
  }
  return {
    hub,
    hubOptions: hubOptions as PgHubOptions,
    channel,
    topics,
    uniqueTable,
    uniquePurgeMs: positiveNumberOption(scope, 'uniquePurgeMs', given.uniquePurgeMs, 60_000),
    claimTimeoutMs: positiveNumberOption(scope, 'claimTimeoutMs', given.claimTimeoutMs, 5000),
    maxPendingClaims: integerOption(scope, 'maxPendingClaims', given.maxPendingClaims, 10_000, 1),
    logger: given.logger,
    durable: resolvePgDurableOptions(given.durable),
  };
}
