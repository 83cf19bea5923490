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
 * object per event, for nothing. (json_array_elements_text fills a
 * tuplestore wherever it is called, which goes to a temporary file beyond
 * `work_mem`: this form is only for batches that cannot be packed, see
 * {@link SQL_NOTIFY_PACKED_ONE_TOPIC}.)
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
 *
 * unnest is called in a subquery's select list (a ProjectSet, which hands
 * the elements on one by one, in order), not in FROM: a function in FROM is
 * a Function Scan, which first copies every element into a tuplestore, and
 * one beyond `work_mem` (4 MB by default) is written to a temporary file and
 * read back. A batch of about 500 payloads of 4 KB was (issue 24: EXPLAIN
 * (ANALYZE, BUFFERS) of 1000 x 4250 B, 521 temporary blocks written and
 * read, 17 ms against 7.6 ms in the select list; the sending backend's file
 * I/O per event in bench/pg-probe.ts at 4 KB went from 4.2 KB read + 12.3 KB
 * written to none read + 8.1 KB written, the notify queue's page).
 */
export const SQL_NOTIFY_PACKED_ONE_TOPIC =
  'SELECT pg_catalog.count(pg_catalog.pg_notify($1, s.p)) FROM ' +
  '(SELECT pg_catalog.unnest(pg_catalog.string_to_array($2::text, pg_catalog.chr(30))) AS p) AS s';

/** The same with a topic per notify: the topics joined by the separator too, zipped. */
export const SQL_NOTIFY_PACKED =
  'SELECT pg_catalog.count(pg_catalog.pg_notify(t.c, t.p)) FROM ' +
  '(SELECT pg_catalog.unnest(pg_catalog.string_to_array($1::text, pg_catalog.chr(30))) AS c, ' +
  'pg_catalog.unnest(pg_catalog.string_to_array($2::text, pg_catalog.chr(30))) AS p) AS t';

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
