import pg from 'pg';
import { QueueFullError, TransportClosedError } from '../../../../lib/index.js';
import { PG_OUTBOX_WAKE, PgOutboxWriter } from '../../../../lib/transports/pg/pg.outbox-writer.js';
import {
  outboxTables,
  pgOutboxMigrationSql,
} from '../../../../lib/transports/pg/pg.outbox-schema.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';
import { waitFor } from '../../../helpers/wait-for.js';

describe('PgOutboxWriter', () => {
  let pool: pg.Pool;
  let listener: pg.Client;
  const table = uniqueName('obw').toLowerCase();
  const channel = uniqueName('obwc').toLowerCase();
  const wakes: string[] = [];
  const logger = memoryLogger();

  const writer = (options: Partial<ConstructorParameters<typeof PgOutboxWriter>[0]> = {}) =>
    new PgOutboxWriter({
      pool,
      tables: outboxTables(table),
      channel,
      batchSize: 100,
      maxQueue: 1000,
      retryDelayMs: () => 50,
      logger: () => logger,
      ...options,
    });

  const rows = async (): Promise<string[]> =>
    (await pool.query(`SELECT payload FROM ${table} ORDER BY xid, id`)).rows.map(r => r.payload);

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 3 });
    await pool.query(pgOutboxMigrationSql(table));
    listener = new pg.Client({ connectionString: PG_URL });
    await listener.connect();
    listener.on('notification', message => void wakes.push(message.payload ?? ''));
    await listener.query(`LISTEN ${channel}`);
  });
  afterEach(async () => {
    await pool.query(`TRUNCATE ${table}`);
    wakes.length = 0;
  });
  afterAll(async () => {
    await listener.end();
    for (const suffix of ['', '_consumers', '_dead'])
      await pool.query(`DROP TABLE IF EXISTS ${table}${suffix}`);
    await pool.end();
  });

  it('writes a burst as one statement, in order, with one wake-up NOTIFY of no content', async () => {
    const w = writer();
    const payloads = Array.from({ length: 50 }, (_, i) => `e:{"i":${i}}`);
    expect(await w.write(payloads)).toEqual(payloads.map(() => true));
    expect(await rows()).toEqual(payloads);
    expect(w.counters).toMatchObject({ outboxWritten: 50, outboxBatches: 1 });
    await waitFor(() => wakes.length === 1);
    expect(wakes).toEqual([PG_OUTBOX_WAKE]);
  });

  it('cuts batches at batchSize, one in flight, keeping the order', async () => {
    const w = writer({ batchSize: 7 });
    const payloads = Array.from({ length: 30 }, (_, i) => `e:${i}`);
    await Promise.all([w.write(payloads.slice(0, 10)), w.write(payloads.slice(10))]);
    expect(await rows()).toEqual(payloads);
    expect(w.counters.outboxBatches).toBe(5);
  });

  it('writes inside your transaction: nothing (row or wake-up) after a rollback', async () => {
    const w = writer();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await w.writeOn(client, 'e:"rolled"');
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await w.writeOn(client, 'e:"kept"');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await rows()).toEqual(['e:"kept"']);
    await waitFor(() => wakes.length === 1);
  });

  it('refuses past maxQueue and after close, with typed errors', async () => {
    const w = writer({ maxQueue: 2 });
    const outcomes = await w.write(['e:1', 'e:2', 'e:3']);
    expect(outcomes.slice(0, 2)).toEqual([true, true]);
    expect(outcomes[2]).toBeInstanceOf(QueueFullError);
    w.close();
    const [after] = await w.write(['e:4']);
    expect(after).toBeInstanceOf(TransportClosedError);
  });

  it('a statement the server refuses fails its posts with the error, logged with its code', async () => {
    const w = writer({ tables: outboxTables(uniqueName('missing').toLowerCase()) });
    const [outcome] = await w.write(['e:1']);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/does not exist/);
    expect(logger.lines.some(l => l.startsWith('error pg outbox-write-refused:'))).toBe(true);
  });
});
