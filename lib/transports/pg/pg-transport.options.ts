import type { PgHub } from './pg.hub.js';
import type { PgHubOptions } from './pg.options.js';

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
}
