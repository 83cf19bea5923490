/**
 * PostgreSQL refuses a NOTIFY payload of 8000 bytes or more (the server's
 * NOTIFY_PAYLOAD_MAX_LENGTH, BLCKSZ - NAMEDATALEN - 128 on a default build),
 * so 7999 is the largest payload that goes out. @publicApi
 */
export const PG_NOTIFY_MAX_PAYLOAD = 7999;

/**
 * What a topic (a PostgreSQL channel) may look like: a lower-case identifier
 * of at most 63 bytes. PostgreSQL folds unquoted identifiers to lower case
 * and cuts them at 63 bytes, so any other name would be LISTENed or NOTIFYed
 * under a different spelling than the one asked for. @publicApi
 */
export const PG_TOPIC_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** Largest and smallest int64 key parts. */
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** One notify, parameterised: the payload never becomes SQL text. */
export const SQL_NOTIFY_ONE = 'SELECT pg_catalog.pg_notify($1, $2)';

/**
 * Many notifies in one statement, so one transaction (PostgreSQL's cost is
 * per transaction, not per notify). The payloads come as one JSON array;
 * its elements come out in array order, so the notifies are queued, and
 * delivered, in that order. One row back, their count: a row per notify
 * (of pg_notify's void) was a DataRow message the driver parsed into a row
 * object per event, for nothing.
 */
export const SQL_NOTIFY_MANY_ONE_TOPIC =
  'SELECT pg_catalog.count(pg_catalog.pg_notify($1, p)) FROM pg_catalog.json_array_elements_text($2::json) AS p';

/** The same with a topic per notify: two JSON arrays zipped. */
export const SQL_NOTIFY_MANY =
  'SELECT pg_catalog.count(pg_catalog.pg_notify(t.c, t.p)) FROM ROWS FROM ' +
  '(pg_catalog.json_array_elements_text($1::json), pg_catalog.json_array_elements_text($2::json)) AS t(c, p)';

/**
 * The separator of a batch's payloads in its packed form (ASCII RS, 0x1e):
 * a pg-hub payload is JSON text, which never holds it unescaped; a batch
 * with a payload that does goes as JSON arrays instead.
 */
export const NOTIFY_SEPARATOR = '\u001e';

/**
 * Many notifies in one statement, as {@link SQL_NOTIFY_MANY_ONE_TOPIC}, the
 * payloads packed: their UTF-8 bytes joined by {@link NOTIFY_SEPARATOR}, sent
 * as one binary text parameter and split by the server. No escaping on
 * either side (a JSON array escapes every quote of every payload, which the
 * server then parses back); the elements come out in order.
 */
export const SQL_NOTIFY_PACKED_ONE_TOPIC =
  'SELECT pg_catalog.count(pg_catalog.pg_notify($1, p)) FROM ' +
  'pg_catalog.unnest(pg_catalog.string_to_array($2::text, pg_catalog.chr(30))) AS p';

/** The same with a topic per notify: the topics joined by the separator too, zipped. */
export const SQL_NOTIFY_PACKED =
  'SELECT pg_catalog.count(pg_catalog.pg_notify(t.c, t.p)) FROM ROWS FROM ' +
  '(pg_catalog.unnest(pg_catalog.string_to_array($1::text, pg_catalog.chr(30))), ' +
  'pg_catalog.unnest(pg_catalog.string_to_array($2::text, pg_catalog.chr(30)))) AS t(c, p)';

/** Hub defaults. */
export const PG_HUB_DEFAULTS = {
  reconnectMs: 1000,
  heartbeatMs: 5000,
  heartbeatTimeoutMs: 3000,
  maxQueue: 10_240,
  batchSize: 1000,
  poolSize: 3,
  applicationName: 'herald-pg-hub',
  stopTimeoutMs: 5000,
} as const;
