import { InvalidOptionsError } from '../../common/errors.js';
import { validateTopic } from './pg.codec.js';
import { PG_NOTIFY_MAX_PAYLOAD } from './pg.constants.js';

/** Something that runs SQL: a `pg` Pool or Client. */
interface Queryable {
  query(text: string): Promise<unknown>;
}

/** Where and how a table's writes become pg-hub events. @publicApi */
export interface PgHubTriggerOptions {
  /** The table, `name` or `schema.name`. */
  table: string;
  /** The channel (topic) of its events. @default the table name, lower-cased */
  channel?: string;
  /** The column whose int64 value becomes the key. @default 'id' */
  keyColumn?: string;
  /**
   * `row`: one event per row, key = that row's key, value =
   * `{ op, schema, table, row }` (the row left out, with `truncated: true`,
   * when the payload would pass the limit). `statement`: one event per
   * statement, key = the affected rows' keys (empty when more than
   * `maxKeys`: reload everything), value = `{ op, schema, table, count }`.
   * @default 'row'
   */
  level?: 'row' | 'statement';
  /** Which writes notify. @default ['insert', 'update', 'delete'] */
  operations?: readonly ('insert' | 'update' | 'delete')[];
  /** Most keys a statement-level event carries. @default 300 */
  maxKeys?: number;
  /** Schema holding the helper functions. @default 'public' */
  schema?: string;
  /** Trigger name prefix (one set of triggers per name and table). @default 'herald_pg_hub' */
  name?: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

function ident(name: string, what: string): string {
  if (!IDENTIFIER.test(name))
    throw new InvalidOptionsError(`${what} ${JSON.stringify(name)} is not a plain SQL identifier`);
  return '"' + name + '"';
}

function qualified(name: string, what: string): string {
  const parts = name.split('.');
  if (parts.length > 2)
    throw new InvalidOptionsError(`${what} ${JSON.stringify(name)} has too many parts`);
  return parts.map(part => ident(part, what)).join('.');
}

function literal(text: string): string {
  return "'" + text.replace(/'/g, "''") + "'";
}

/**
 * The helper functions, installed in `schema` (idempotent, `CREATE OR
 * REPLACE`):
 * - `herald_pg_hub_payload(keys bigint[], value jsonb) RETURNS text`: a
 *   pg-hub payload, pure ASCII, never NULL (`e` for no keys and no value);
 * - `herald_pg_hub_key(text) RETURNS bigint`: the int64 in a text, or NULL;
 * - `herald_pg_hub_row_notify()` and `herald_pg_hub_statement_notify()`:
 *   trigger functions (arguments: channel, key column, max keys).
 * The trigger functions pin `search_path` and never fail the user's write:
 * any error becomes a WARNING and the event is skipped.
 * @publicApi
 */
export function pgHubFunctionsSql(schema = 'public'): string {
  const s = ident(schema, 'schema');
  const limit = PG_NOTIFY_MAX_PAYLOAD;
  return `
CREATE OR REPLACE FUNCTION ${s}.herald_pg_hub_payload(keys bigint[], value jsonb)
RETURNS text LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $herald$
DECLARE
  head text := 'e' || coalesce(array_to_string(keys, ','), '');
  body text;
  ch text;
  code int;
BEGIN
  IF value IS NULL OR jsonb_typeof(value) = 'null' THEN
    RETURN head;
  END IF;
  -- '$' and every non-ASCII character as \\uXXXX: a pure-ASCII payload that
  -- both pg-hub originals decode, whatever the client encoding.
  body := replace(value::text, '$', E'\\\\u0024');
  FOR ch IN SELECT DISTINCT m[1] FROM regexp_matches(body, '([^\\x01-\\x7f])', 'g') AS m LOOP
    code := ascii(ch);
    IF code < 65536 THEN
      body := replace(body, ch, E'\\\\u' || lpad(to_hex(code), 4, '0'));
    ELSE
      code := code - 65536;
      body := replace(body, ch, E'\\\\u' || to_hex(55296 + (code >> 10)) || E'\\\\u' || to_hex(56320 + (code & 1023)));
    END IF;
  END LOOP;
  RETURN head || ':' || body;
END
$herald$;

CREATE OR REPLACE FUNCTION ${s}.herald_pg_hub_key(value text)
RETURNS bigint LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $herald$
  SELECT CASE
    WHEN value ~ '^-?[0-9]{1,19}$'
     AND value::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
    THEN value::bigint
  END
$herald$;

CREATE OR REPLACE FUNCTION ${s}.herald_pg_hub_row_notify()
RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $herald$
DECLARE
  channel text := TG_ARGV[0];
  key_column text := coalesce(TG_ARGV[1], 'id');
  row_data jsonb;
  key bigint;
  keys bigint[] := '{}';
  meta jsonb;
  payload text;
BEGIN
  BEGIN
    row_data := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
    key := ${s}.herald_pg_hub_key(row_data ->> key_column);
    IF key IS NOT NULL THEN
      keys := ARRAY[key];
    END IF;
    meta := jsonb_build_object('op', lower(TG_OP), 'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME);
    payload := NULL;
    -- Escaping only grows the text: a row already too long is never escaped.
    IF octet_length(row_data::text) < ${limit} THEN
      payload := ${s}.herald_pg_hub_payload(keys, meta || jsonb_build_object('row', row_data));
    END IF;
    IF payload IS NULL OR octet_length(payload) > ${limit} THEN
      payload := ${s}.herald_pg_hub_payload(keys, meta || '{"truncated": true}'::jsonb);
    END IF;
    PERFORM pg_notify(channel, payload);
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'herald_pg_hub_row_notify on %.% skipped: % (%)', TG_TABLE_SCHEMA, TG_TABLE_NAME, SQLERRM, SQLSTATE;
  END;
  RETURN NULL;
END
$herald$;

CREATE OR REPLACE FUNCTION ${s}.herald_pg_hub_statement_notify()
RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $herald$
DECLARE
  channel text := TG_ARGV[0];
  key_column text := coalesce(TG_ARGV[1], 'id');
  max_keys int := coalesce(TG_ARGV[2], '300')::int;
  total bigint;
  found bigint;
  keys bigint[];
  meta jsonb;
  payload text;
BEGIN
  BEGIN
    IF TG_OP = 'DELETE' THEN
      SELECT count(*) INTO total FROM old_table;
      IF total <= max_keys THEN
        SELECT count(k), array_agg(k) INTO found, keys
          FROM (SELECT ${s}.herald_pg_hub_key(to_jsonb(o) ->> key_column) AS k FROM old_table o) AS t;
      END IF;
    ELSE
      SELECT count(*) INTO total FROM new_table;
      IF total <= max_keys THEN
        SELECT count(k), array_agg(k) INTO found, keys
          FROM (SELECT ${s}.herald_pg_hub_key(to_jsonb(n) ->> key_column) AS k FROM new_table n) AS t;
      END IF;
    END IF;
    -- A statement that touched no row says nothing: no event (an empty key
    -- list would read as "reload everything").
    IF total = 0 THEN
      RETURN NULL;
    END IF;
    -- An empty key list means "reload everything": too many rows, or a key that is not an int64.
    IF total > max_keys OR found IS DISTINCT FROM total THEN
      keys := '{}';
    END IF;
    meta := jsonb_build_object('op', lower(TG_OP), 'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'count', total);
    payload := ${s}.herald_pg_hub_payload(keys, meta);
    IF octet_length(payload) > ${limit} THEN
      payload := ${s}.herald_pg_hub_payload('{}', meta);
    END IF;
    PERFORM pg_notify(channel, payload);
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'herald_pg_hub_statement_notify on %.% skipped: % (%)', TG_TABLE_SCHEMA, TG_TABLE_NAME, SQLERRM, SQLSTATE;
  END;
  RETURN NULL;
END
$herald$;
`;
}

/**
 * The statements that (re)create a table's triggers; run
 * {@link pgHubFunctionsSql} first. @publicApi
 */
export function pgHubTriggerSql(options: PgHubTriggerOptions): string {
  const table = qualified(options.table, 'table');
  const tableName = options.table.split('.').pop()!;
  const channel = validateTopic(options.channel ?? tableName.toLowerCase());
  const keyColumn = options.keyColumn ?? 'id';
  ident(keyColumn, 'keyColumn');
  const schema = ident(options.schema ?? 'public', 'schema');
  const prefix = options.name ?? 'herald_pg_hub';
  ident(prefix + '_stmt_ins', 'name');
  const maxKeys = options.maxKeys ?? 300;
  if (!Number.isInteger(maxKeys) || maxKeys < 0)
    throw new InvalidOptionsError('maxKeys must be an integer >= 0');
  const operations = [...new Set(options.operations ?? ['insert', 'update', 'delete'])];
  if (
    operations.length === 0 ||
    operations.some(op => !['insert', 'update', 'delete'].includes(op))
  ) {
    throw new InvalidOptionsError("operations must list 'insert', 'update' and/or 'delete'");
  }
  const args = [channel, keyColumn, String(maxKeys)].map(literal).join(', ');
  const statements: string[] = [];
  const drop = (name: string): void =>
    void statements.push(`DROP TRIGGER IF EXISTS ${ident(name, 'name')} ON ${table}`);
  if ((options.level ?? 'row') === 'row') {
    const name = `${prefix}_row`;
    drop(name);
    statements.push(
      `CREATE TRIGGER ${ident(name, 'name')} AFTER ${operations.map(op => op.toUpperCase()).join(' OR ')} ON ${table} ` +
        `FOR EACH ROW EXECUTE FUNCTION ${schema}.herald_pg_hub_row_notify(${args})`,
    );
  } else {
    const referencing = {
      insert: 'NEW TABLE AS new_table',
      update: 'OLD TABLE AS old_table NEW TABLE AS new_table',
      delete: 'OLD TABLE AS old_table',
    };
    const suffix = { insert: 'ins', update: 'upd', delete: 'del' };
    for (const op of ['insert', 'update', 'delete'] as const) {
      const name = `${prefix}_stmt_${suffix[op]}`;
      drop(name);
      if (!operations.includes(op)) continue;
      statements.push(
        `CREATE TRIGGER ${ident(name, 'name')} AFTER ${op.toUpperCase()} ON ${table} REFERENCING ${referencing[op]} ` +
          `FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.herald_pg_hub_statement_notify(${args})`,
      );
    }
  }
  return statements.join(';\n') + ';\n';
}

/**
 * Serialises installers (several app instances at boot, parallel tests):
 * two sessions replacing one function at once fail with "tuple concurrently
 * updated". Held until the end of the install's implicit transaction.
 */
const INSTALL_LOCK =
  "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('herald_pg_hub_install'));\n";

/** Installs (or replaces) the helper functions, all or nothing. @publicApi */
export async function installPgHubFunctions(db: Queryable, schema = 'public'): Promise<void> {
  await db.query(INSTALL_LOCK + pgHubFunctionsSql(schema));
}

/**
 * Installs the helper functions and a table's triggers, all or nothing (one
 * simple query runs as one implicit transaction). @publicApi
 */
export async function installPgHubTrigger(
  db: Queryable,
  options: PgHubTriggerOptions,
): Promise<void> {
  await db.query(
    INSTALL_LOCK + pgHubFunctionsSql(options.schema) + ';\n' + pgHubTriggerSql(options),
  );
}
