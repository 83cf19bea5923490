import pg from 'pg';
import { InvalidOptionsError } from '../../../lib/index.js';
import {
  InvalidTopicError,
  PgHub,
  decodeEvent,
  installPgHubFunctions,
  installPgHubTrigger,
  isAdvisory,
  pgHubTriggerSql,
  type PgHubEvent,
} from '../../../lib/pg/index.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

describe('pg-hub trigger helper', () => {
  let admin: pg.Pool;
  let hub: PgHub;
  const tables: string[] = [];
  const events: PgHubEvent[] = [];

  const table = (prefix: string): string => {
    const name = uniqueName(prefix).toLowerCase().slice(0, 50);
    tables.push(name);
    return name;
  };

  const listen = async (topic: string): Promise<void> => {
    await hub.consumer(event => void (isAdvisory(event) || events.push(event))).subscribe(topic);
  };

  beforeAll(async () => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
    await installPgHubFunctions(admin);
    hub = new PgHub({ connectionString: PG_URL, reconnectMs: 50 });
    await hub.start();
  });

  afterEach(() => {
    events.length = 0;
  });

  afterAll(async () => {
    await hub.stop({ wait: false });
    for (const name of tables) await admin.query(`DROP TABLE IF EXISTS "${name}"`);
    await admin.query('DROP SCHEMA IF EXISTS herald_evil_test CASCADE');
    await admin.end();
  });

  it('builds pg-hub payloads in SQL: pure ASCII, $ escaped, never NULL', async () => {
    const { rows } = await admin.query(
      `SELECT herald_pg_hub_payload(ARRAY[1, -2]::bigint[], '{"a": "é $ 😀"}') AS a,
              herald_pg_hub_payload(NULL, NULL) AS b,
              herald_pg_hub_payload('{}', 'null') AS c,
              herald_pg_hub_payload(ARRAY[NULL, 5]::bigint[], '[1]') AS d`,
    );
    expect(rows[0]).toEqual({
      a: 'e1,-2:{"a": "\\u00e9 \\u0024 \\ud83d\\ude00"}',
      b: 'e',
      c: 'e',
      d: 'e5:[1]',
    });
    expect(decodeEvent(rows[0].a)).toEqual({ key: [1n, -2n], value: { a: 'é $ 😀' } });
  });

  it('turns INSERT/UPDATE/DELETE into row events; a wide row still commits, without its data', async () => {
    const name = table('rows');
    await admin.query(`CREATE TABLE "${name}" (id bigint PRIMARY KEY, body text)`);
    await installPgHubTrigger(admin, { table: name });
    await listen(name);
    await admin.query(`INSERT INTO "${name}" VALUES (1, 'small $ é'), (-2, repeat('x', 200000))`);
    await admin.query(`UPDATE "${name}" SET body = 'y' WHERE id = 1`);
    await admin.query(`DELETE FROM "${name}" WHERE id = 1`);
    await waitFor(() => events.length === 4);
    expect(events.map(e => [e.topic, e.key, e.value])).toEqual([
      [
        name,
        [1n],
        { op: 'insert', schema: 'public', table: name, row: { id: 1, body: 'small $ é' } },
      ],
      [name, [-2n], { op: 'insert', schema: 'public', table: name, truncated: true }],
      [name, [1n], { op: 'update', schema: 'public', table: name, row: { id: 1, body: 'y' } }],
      [name, [1n], { op: 'delete', schema: 'public', table: name, row: { id: 1, body: 'y' } }],
    ]);
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM "${name}"`);
    expect(rows[0].n).toBe(1);
    expect(hub.stats().rxErrorCount).toBe(0);
  });

  it('statement events carry the keys, capped: over maxKeys the list is empty (reload everything)', async () => {
    const name = table('stmt');
    await admin.query(`CREATE TABLE "${name}" (id bigint PRIMARY KEY)`);
    await installPgHubTrigger(admin, {
      table: name,
      channel: `${name}_stm`,
      level: 'statement',
      maxKeys: 5,
    });
    await listen(`${name}_stm`);
    await admin.query(`INSERT INTO "${name}" SELECT generate_series(1, 3)`);
    await admin.query(`INSERT INTO "${name}" SELECT generate_series(10, 19)`);
    await admin.query(`DELETE FROM "${name}"`);
    await waitFor(() => events.length === 3);
    expect(
      events.map(e => [
        e.key,
        (e.value as { op: string; count: number }).op,
        (e.value as { count: number }).count,
      ]),
    ).toEqual([
      [[1n, 2n, 3n], 'insert', 3],
      [[], 'insert', 10],
      [[], 'delete', 13],
    ]);
  });

  it('a statement that touches no row sends no statement event (pg-hub example1 sends an empty one)', async () => {
    const name = table('stmtzero');
    await admin.query(`CREATE TABLE "${name}" (id bigint PRIMARY KEY)`);
    await installPgHubTrigger(admin, { table: name, channel: `${name}_stm`, level: 'statement' });
    await listen(`${name}_stm`);
    await admin.query(`UPDATE "${name}" SET id = id WHERE false`);
    await admin.query(`DELETE FROM "${name}"`);
    await admin.query(`INSERT INTO "${name}" VALUES (7)`);
    // Notifications arrive in commit order: once the insert's is in, none came before it.
    await waitFor(() => events.length >= 1);
    expect(events.map(e => [e.key, (e.value as { op: string }).op])).toEqual([[[7n], 'insert']]);
  });

  it('never fails the write: a notify the server refuses becomes a WARNING', async () => {
    const name = table('safe');
    await admin.query(`CREATE TABLE "${name}" (id text PRIMARY KEY)`);
    // A channel name PostgreSQL refuses (over 63 bytes), set up by hand past the helper's checks.
    await admin.query(
      `CREATE TRIGGER t AFTER INSERT ON "${name}" FOR EACH ROW EXECUTE FUNCTION herald_pg_hub_row_notify('${'x'.repeat(70)}')`,
    );
    await expect(
      admin.query(`INSERT INTO "${name}" VALUES ('not-a-number')`),
    ).resolves.toBeDefined();
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM "${name}"`);
    expect(rows[0].n).toBe(1);
  });

  it('pins search_path: a hostile schema first in the path changes nothing', async () => {
    const name = table('path');
    await admin.query(`CREATE TABLE "${name}" (id bigint PRIMARY KEY)`);
    await installPgHubTrigger(admin, { table: name });
    await listen(name);
    await admin.query(`CREATE SCHEMA IF NOT EXISTS herald_evil_test;
      CREATE OR REPLACE FUNCTION herald_evil_test.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'hacked' $$;`);
    const client = await admin.connect();
    try {
      await client.query('SET search_path = herald_evil_test, pg_catalog, public');
      await client.query(`INSERT INTO public."${name}" VALUES (42)`);
    } finally {
      await client.query('RESET search_path');
      client.release();
    }
    await waitFor(() => events.length === 1);
    expect(events[0]).toMatchObject({ key: [42n], value: { op: 'insert' } });
  });

  it('installs from many sessions at once (app instances booting together)', async () => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 6 });
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, () => installPgHubFunctions(pool)),
      );
      expect(results.filter(r => r.status === 'rejected')).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it('validates its options', () => {
    expect(() => pgHubTriggerSql({ table: 'a;drop' })).toThrow(InvalidOptionsError);
    expect(() => pgHubTriggerSql({ table: 'orders', channel: 'Orders' })).toThrow(
      InvalidTopicError,
    );
    expect(() => pgHubTriggerSql({ table: 'orders', keyColumn: 'id"x' })).toThrow(
      InvalidOptionsError,
    );
    expect(() => pgHubTriggerSql({ table: 'orders', operations: [] })).toThrow(InvalidOptionsError);
    expect(pgHubTriggerSql({ table: 'Orders', channel: 'orders' })).toContain('ON "Orders"');
  });
});
