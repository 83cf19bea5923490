/**
 * `nest-herald/pg`: pg-hub for Node and the EventsModule pg transport. The
 * only subpath that loads `pg` (an optional peer: `npm i pg`). Its typings
 * use pg's, which pg does not ship: TypeScript apps add `npm i -D @types/pg`.
 * Importing it adds the `pg` field to EventsModule's options (below).
 */
import type { PgTransportOptions } from '../transports/pg/pg-transport.options.js';

// Adds `pg` to EventsModule's options for apps that import this entry point
// (the root typings name no pg type, so apps without pg need no @types/pg).
declare module 'nest-herald' {
  interface TransportSelection {
    /** Options of the `pg` transport (`transport: 'pg'`), from `nest-herald/pg`. */
    pg?: PgTransportOptions;
  }
  interface TieredUplinkOptions {
    /** The uplink's pg options (`ipc: { uplink: { transport: 'pg', pg } }`; durable mode), from `nest-herald/pg`. */
    pg?: PgTransportOptions;
  }
}

export { createTieredTransport } from '../transports/create-tiered.js';

export {
  PgHub,
  isConnectionError,
  type PgHubState,
  type PgHubStats,
  type PgHubStatus,
  type PgNotifyOptions,
} from '../transports/pg/pg.hub.js';
export {
  PgConsumer,
  type PgConsumerState,
  type PgHubHook,
  type PgHubRawHook,
} from '../transports/pg/pg.consumer.js';
export {
  advisory,
  isAdvisory,
  type PgHubAction,
  type PgHubAdvisory,
  type PgHubAdvisoryEvent,
  type PgHubEvent,
  type PgHubRawEvent,
} from '../transports/pg/pg.advisory.js';
export {
  decodeEvent,
  encodeEvent,
  encodePayload,
  escapeJson,
  normalizeKey,
  splitPayload,
  validateTopic,
  type DecodedPgEvent,
  type PgKey,
  type PgKeyInput,
} from '../transports/pg/pg.codec.js';
export { InvalidTopicError, PgDecodeError } from '../transports/pg/pg.errors.js';
export { PG_NOTIFY_MAX_PAYLOAD, PG_TOPIC_PATTERN } from '../transports/pg/pg.constants.js';
export {
  PG_HUB_OPTION_KEYS,
  resolvePgHubOptions,
  type PgHubOptions,
  type ResolvedPgHubOptions,
} from '../transports/pg/pg.options.js';
export {
  resolvePgTransportOptions,
  type PgTransportOptions,
  type ResolvedPgTransportOptions,
} from '../transports/pg/pg-transport.options.js';
export { PgTransport, topLevelData } from '../transports/pg/pg.transport.js';
export {
  resolvePgDurableOptions,
  type PgDurableOptions,
  type ResolvedPgDurableOptions,
} from '../transports/pg/pg.outbox.options.js';
export { pgOutboxMigrationSql, PgOutboxSchemaError } from '../transports/pg/pg.outbox-schema.js';
export type { PgOutboxCleanupResult } from '../transports/pg/pg.outbox-cleanup.js';
export type { PgOutbox } from '../transports/pg/pg.outbox.js';
export {
  installPgHubFunctions,
  installPgHubTrigger,
  pgHubFunctionsSql,
  pgHubTriggerSql,
  type PgHubTriggerOptions,
} from '../transports/pg/pg.trigger.js';
