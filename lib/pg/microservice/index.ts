/**
 * `nest-herald/pg/microservice`: run a Nest app as a microservice over
 * PostgreSQL NOTIFY (`PgNotifyServer`) and talk to one (`PgNotifyClient`).
 * Loads `pg` and `@nestjs/microservices` (both optional peers), which is why
 * it is a subpath of its own: `nest-herald/pg` never loads the latter.
 */
export * from '../../microservices/index.js';
export { PgNotifyServer } from '../../microservices/pg/pg-notify.server.js';
export { PgNotifyClient } from '../../microservices/pg/pg-notify.client.js';
export { PgNotifyContext } from '../../microservices/pg/pg-notify.context.js';
export { pgChannelOf } from '../../microservices/pg/pg-notify.channel.js';
export type {
  PgNotifyClientOptions,
  PgNotifyServerOptions,
} from '../../microservices/pg/pg-notify.options.js';
