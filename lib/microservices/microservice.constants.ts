/** Transport id of {@link PgNotifyServer}: `@EventPattern('x', PG_NOTIFY_TRANSPORT)` binds to it alone. @publicApi */
export const PG_NOTIFY_TRANSPORT: unique symbol = Symbol('nest-herald:pg-notify');

/** Transport id of {@link RedisStreamsServer}. @publicApi */
export const REDIS_STREAMS_TRANSPORT: unique symbol = Symbol('nest-herald:redis-streams');

/** Separates the reply address from the random part of a request id. */
export const REPLY_ADDRESS_SEPARATOR = '#';

/** Defaults shared by servers and clients. */
export const MICROSERVICE_DEFAULTS = {
  startup: 'fail-fast',
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  closeTimeoutMs: 5000,
} as const;

/** Nest's limits on object patterns (transformPatternToRoute): deeper or wider ones become placeholders. */
export const PATTERN_MAX_DEPTH = 5;
export const PATTERN_MAX_KEYS = 20;
