import pg from 'pg';
import { PgOutboxCleanup } from '../../../../lib/transports/pg/pg.outbox-cleanup.js';
import {
  outboxTables,
  pgOutboxMigrationSql,
} from '../../../../lib/transports/pg/pg.outbox-schema.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';

describe('PgOutboxCleanup', () => {
  let pool: pg.Pool;
  const table = uniqueName('obc').toLowerCase();
  let channel = '';
  const logger = memoryLogger();

  const cleanup = (options: Partial<ConstructorParameters<typeof PgOutboxCleanup>[0]> = {}) =>
    new PgOutboxCleanup({
      pool,
      tables: outboxTables(table),
      channel,
      retentionMs: 86_400_000,
      retentionCount: 1_000_000,
      consumerExpiryMs: 86_400_000,
      intervalMs: 0,
      logger: () => logger,
      ...options,
    });

  /** Inserts n rows; returns the (xid, id) of each. */
  const insert = async (n: number): Promise<{ xid: string; id: string }[]> =>
    (
      await pool.query(
        `INSERT INTO ${table} (channel, payload) SELECT $1, 'e:' || g FROM generate_series(1, $2) g RETURNING xid::text, id::text`,
        [channel, n],
      )
    ).rows;

  const consumer = (name: string, at: { xid: string; id: string }, seenAgoMs = 0) =>
    pool.query(
      `INSERT INTO ${table}_consumers (channel, name, xid, id, seen_at) VALUES ($1, $2, $3::xid8, $4, now() - $5::float8 * interval '1 millisecond')`,
      [channel, name, at.xid, at.id, seenAgoMs],
    );

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
    await pool.query(pgOutboxMigrationSql(table));
  });
  beforeEach(() => {
    channel = uniqueName('obcc').toLowerCase();
    logger.lines.length = 0;
  });
  afterAll(async () => {
    for (const suffix of ['', '_consumers', '_dead'])
      await pool.query(`DROP TABLE IF EXISTS ${table}${suffix}`);
    await pool.end();
  });

  it('keeps the newest retentionCount rows, and counts per live consumer the deleted rows after its cursor', async () => {
    const rows = await insert(10);
    await consumer('behind', rows[1]); // had read 2 of 10
    await consumer('ahead', rows[9]); // had read all
    const result = await cleanup({ retentionCount: 4 }).runOnce();
    expect(result).toEqual({ ran: true, deleted: 6, expired: [], lost: { behind: 4 } });
    const left = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE channel = $1`, [
      channel,
    ]);
    expect(left.rows[0].n).toBe(4);
    const lost = await pool.query(
      `SELECT name, lost::int FROM ${table}_consumers WHERE channel = $1 ORDER BY name`,
      [channel],
    );
    expect(lost.rows).toEqual([
      { name: 'ahead', lost: 0 },
      { name: 'behind', lost: 4 },
    ]);
    expect(logger.lines).toContainEqual(
      expect.stringMatching(
        /^warn pg outbox-retention-lost: retention removed 4 event\(s\) consumer behind had not read yet .*consumer=behind/,
      ),
    );
  });

  it('deletes by age, and removes consumers unseen for consumerExpiryMs first (their rows are not counted lost)', async () => {
    const rows = await insert(3);
    await consumer('stale', rows[0], 10_000);
    const result = await cleanup({ retentionMs: 0.001, consumerExpiryMs: 5000 }).runOnce();
    expect(result).toEqual({ ran: true, deleted: 3, expired: ['stale'], lost: {} });
    expect(logger.lines).toContainEqual(
      expect.stringMatching(/^warn pg outbox-consumer-expired: .*consumer=stale/),
    );
  });

  it('skips the run while another instance holds the cleanup lock of this outbox and channel', async () => {
    await insert(3);
    const holder = await pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtext($1), hashtext($2))', [
        'herald_outbox_cleanup',
        `${table}:${channel}`,
      ]);
      expect(await cleanup({ retentionCount: 1 }).runOnce()).toEqual({
        ran: false,
        deleted: 0,
        expired: [],
        lost: {},
      });
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
    expect((await cleanup({ retentionCount: 1 }).runOnce()).deleted).toBe(2);
  });
});
