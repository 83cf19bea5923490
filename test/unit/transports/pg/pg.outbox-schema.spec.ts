import pg from 'pg';
import {
  ensureOutboxSchema,
  outboxTables,
  pgOutboxMigrationSql,
  PgOutboxSchemaError,
} from '../../../../lib/transports/pg/pg.outbox-schema.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';

describe('pg outbox schema', () => {
  let pool: pg.Pool;
  const tables: string[] = [];
  const name = (): string => {
    const table = uniqueName('obs').toLowerCase();
    tables.push(table);
    return table;
  };

  beforeAll(() => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  });
  afterAll(async () => {
    for (const table of tables)
      for (const suffix of ['', '_consumers', '_dead'])
        await pool.query(`DROP TABLE IF EXISTS ${table}${suffix}`);
    await pool.end();
  });

  it('names the three tables and the index, schema-qualified too', () => {
    expect(outboxTables('app.outbox')).toEqual({
      name: 'app.outbox',
      outbox: '"app"."outbox"',
      consumers: '"app"."outbox_consumers"',
      dead: '"app"."outbox_dead"',
      index: '"outbox_read"',
    });
  });

  it('the migration is idempotent and gives each row its transaction id', async () => {
    const table = name();
    await pool.query(pgOutboxMigrationSql(table));
    await pool.query(pgOutboxMigrationSql(table));
    const { rows } = await pool.query(
      `INSERT INTO ${table} (channel, payload) VALUES ('c', 'e') RETURNING xid::text = pg_current_xact_id()::text AS same`,
    );
    expect(rows[0].same).toBe(true);
  });

  it('creates the tables from several instances at once', async () => {
    const table = name();
    await Promise.all(
      Array.from({ length: 4 }, () => ensureOutboxSchema(pool, outboxTables(table), true)),
    );
    const { rows } = await pool.query('SELECT to_regclass($1) IS NOT NULL AS there', [
      `${table}_dead`,
    ]);
    expect(rows[0].there).toBe(true);
  });

  it('with createTables false, a missing table is a PgOutboxSchemaError pointing at the migration', async () => {
    const table = name();
    await expect(ensureOutboxSchema(pool, outboxTables(table), false)).rejects.toThrow(
      PgOutboxSchemaError,
    );
    await expect(ensureOutboxSchema(pool, outboxTables(table), false)).rejects.toThrow(
      /table "obs_.*" does not exist: run the migration \(pgOutboxMigrationSql\(\)/,
    );
  });
});
