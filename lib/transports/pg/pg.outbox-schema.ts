import type { Pool } from 'pg';
import { HeraldError } from '../../common/errors.js';
import { describeError } from '../../common/describe-error.js';
import { quoteTable } from './pg.unique-claims.js';

/** The three tables of durable mode, as given and quoted. */
export interface PgOutboxTables {
  /** `[schema.]name` of the outbox, as given. */
  readonly name: string;
  readonly outbox: string;
  readonly consumers: string;
  readonly dead: string;
  /** The read index's own name (unqualified: it lives in the table's schema). */
  readonly index: string;
}

/** The tables of an outbox named `[schema.]name` (checked against PG_OUTBOX_TABLE_NAME). */
export function outboxTables(name: string): PgOutboxTables {
  const base = name.includes('.') ? name.slice(name.indexOf('.') + 1) : name;
  return {
    name,
    outbox: quoteTable(name),
    consumers: quoteTable(`${name}_consumers`),
    dead: quoteTable(`${name}_dead`),
    index: `"${base}_read"`,
  };
}

/**
 * The migration of durable mode for an outbox named `table` (default
 * `herald_outbox`): the outbox, the consumers' cursors and the dead letters.
 * Idempotent (`IF NOT EXISTS`). Run it yourself and pass `createTables:
 * false` when the application's role may not create tables.
 *
 * `xid` is the inserting transaction's id (`pg_current_xact_id()`, xid8,
 * never wraps): readers order by `(xid, id)` and read only rows whose
 * transaction is older than every transaction still running, so a
 * transaction committing after a younger one is never skipped.
 * @publicApi
 */
export function pgOutboxMigrationSql(table = 'herald_outbox'): string {
  const t = outboxTables(table);
  return `CREATE TABLE IF NOT EXISTS ${t.outbox} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
  channel text NOT NULL,
  payload text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX IF NOT EXISTS ${t.index} ON ${t.outbox} (channel, xid, id);
CREATE TABLE IF NOT EXISTS ${t.consumers} (
  channel text NOT NULL,
  name text NOT NULL,
  xid xid8 NOT NULL,
  id bigint NOT NULL,
  lost bigint NOT NULL DEFAULT 0,
  seen_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  PRIMARY KEY (channel, name)
);
CREATE TABLE IF NOT EXISTS ${t.dead} (
  dead_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  channel text NOT NULL,
  consumer text NOT NULL,
  id bigint NOT NULL,
  xid xid8 NOT NULL,
  payload text NOT NULL,
  attempts integer NOT NULL,
  reason text NOT NULL,
  dead_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
`;
}

/**
 * Durable mode cannot use its tables: missing (with `createTables: false`),
 * not creatable, or lacking a privilege. The message names the table and
 * the privilege. @publicApi
 */
export class PgOutboxSchemaError extends HeraldError {}

/** What each table needs, checked with has_table_privilege. */
const NEEDED: readonly (readonly [keyof PgOutboxTables, readonly string[]])[] = [
  ['outbox', ['SELECT', 'INSERT', 'DELETE']],
  ['consumers', ['SELECT', 'INSERT', 'UPDATE', 'DELETE']],
  ['dead', ['INSERT']],
];

/** Creation runs under this advisory lock, so instances starting together never race. */
const SCHEMA_LOCK = 'herald_outbox_schema';

/**
 * Makes sure the tables are there and usable by this role: creates them when
 * `create` (under an advisory lock), then checks each table exists and has
 * the privileges durable mode uses. Throws {@link PgOutboxSchemaError}
 * naming the table and the missing privilege.
 */
export async function ensureOutboxSchema(
  pool: Pool,
  tables: PgOutboxTables,
  create: boolean,
): Promise<void> {
  if (create) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))', [
        SCHEMA_LOCK,
      ]);
      await client.query(pgOutboxMigrationSql(tables.name));
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      const code = (error as { code?: string }).code;
      if (code === '42501') {
        throw new PgOutboxSchemaError(
          `pg durable: cannot create the outbox tables ${tables.outbox}, ${tables.consumers}, ` +
            `${tables.dead}: ${describeError(error)}. The role needs the CREATE privilege on ` +
            `the schema (GRANT CREATE ON SCHEMA <schema> TO <role>), or run ` +
            `pgOutboxMigrationSql() as an owner and set durable.createTables: false`,
        );
      }
      throw error;
    } finally {
      client.release();
    }
  }
  for (const [key, privileges] of NEEDED) {
    const table = tables[key];
    const { rows } = await pool.query<{ exists: boolean; missing: string[] | null }>(
      'SELECT pg_catalog.to_regclass($1) IS NOT NULL AS exists, ' +
        'CASE WHEN pg_catalog.to_regclass($1) IS NULL THEN NULL ELSE ARRAY(' +
        'SELECT p FROM pg_catalog.unnest($2::text[]) AS p ' +
        'WHERE NOT pg_catalog.has_table_privilege(pg_catalog.to_regclass($1), p)) END AS missing',
      [table, privileges],
    );
    if (!rows[0].exists) {
      throw new PgOutboxSchemaError(
        `pg durable: table ${table} does not exist: run the migration (pgOutboxMigrationSql(), ` +
          `in the README) or set durable.createTables: true with a role that has CREATE on the schema`,
      );
    }
    const missing = rows[0].missing ?? [];
    if (missing.length > 0) {
      throw new PgOutboxSchemaError(
        `pg durable: the role lacks the ${missing.join(', ')} privilege${missing.length > 1 ? 's' : ''} ` +
          `on ${table} (GRANT ${missing.join(', ')} ON ${table} TO <role>)`,
      );
    }
  }
}
