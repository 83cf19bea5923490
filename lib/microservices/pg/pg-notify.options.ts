import type { PgHub } from '../../transports/pg/pg.hub.js';
import type { PgHubOptions } from '../../transports/pg/pg.options.js';
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
