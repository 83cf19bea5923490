/**
 * `nest-herald/redis/microservice`: run a Nest app as a microservice over
 * Redis Streams (`RedisStreamsServer`) and talk to one (`RedisStreamsClient`).
 * Loads `ioredis` and `@nestjs/microservices` (both optional peers), which is
 * why it is a subpath of its own: `nest-herald/redis` never loads the latter.
 */
export * from '../../microservices/index.js';
export {
  RedisStreamsServer,
  type RedisStreamsServerParts,
} from '../../microservices/redis/redis-streams.server.js';
export {
  RedisStreamsClient,
  type RedisStreamsClientParts,
} from '../../microservices/redis/redis-streams.client.js';
export { RedisStreamsContext } from '../../microservices/redis/redis-streams.context.js';
export type {
  RedisStreamsClientOptions,
  RedisStreamsServerOptions,
} from '../../microservices/redis/redis-streams.options.js';
