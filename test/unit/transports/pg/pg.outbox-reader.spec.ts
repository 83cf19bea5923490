import pg from 'pg';
import {
  PgOutboxReader,
  type PgOutboxReaderOptions,
  type PgOutboxRow,
} from '../../../../lib/transports/pg/pg.outbox-reader.js';
import {
  outboxTables,
  pgOutboxMigrationSql,
} from '../../../../lib/transports/pg/pg.outbox-schema.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';
import { settleIo, waitFor } from '../../../helpers/wait-for.js';

describe('PgOutboxReader', () => {
  let pool: pg.Pool;
  const table = uniqueName('obr').toLowerCase();
  const readers: PgOutboxReader[] = [];
  let channel = '';
  const LONG = { timeoutMs: 30_000 };

  const insert = async (...payloads: string[]): Promise<void> => {
    for (const payload of payloads)
      await pool.query(`INSERT INTO ${table} (channel, payload) VALUES ($1, $2)`, [
        channel,
        payload,
      ]);
  };

  const reader = (
    handle: (row: PgOutboxRow, self: PgOutboxReader) => void,
    options: Partial<PgOutboxReaderOptions> = {},
  ): PgOutboxReader => {
    const made: PgOutboxReader = new PgOutboxReader({
      pool,
      tables: outboxTables(table),
      channel,
      consumer: 'unit',
      readBatch: 100,
      maxInFlight: 100,
      pollMs: 50,
      maxAttempts: 3,
      retryDelayMs: 10,
      refreshMs: 1000,
      handle: row => handle(row, made),
      logger: memoryLogger(),
      ...options,
    });
    readers.push(made);
    return made;
  };

  const storedCursor = async (): Promise<{ xid: string; id: string }> =>
    (
      await pool.query(
        'SELECT xid::text, id::text FROM ' + table + '_consumers WHERE channel = $1',
        [channel],
      )
    ).rows[0];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
    await pool.query(pgOutboxMigrationSql(table));
  });
  beforeEach(() => {
    channel = uniqueName('obrc').toLowerCase();
  });
  afterEach(async () => {
    await Promise.all(readers.splice(0).map(r => r.close(false)));
  });
  afterAll(async () => {
    for (const suffix of ['', '_consumers', '_dead'])
      await pool.query(`DROP TABLE IF EXISTS ${table}${suffix}`);
    await pool.end();
  });

  it('a new consumer starts at the horizon (every open transaction ahead of it); rows after it are handed on in order and the settled prefix is stored', async () => {
    await insert('e:"old"');
    const seen: string[] = [];
    const r = reader((row, self) => {
      seen.push(row.payload);
      self.settle(row, { outcome: 'ack' });
    });
    await r.start();
    await insert('e:1', 'e:2', 'e:3');
    r.wake();
    const mine = (): string[] => seen.filter(payload => payload !== 'e:"old"');
    await waitFor(() => mine().length === 3, LONG);
    expect(mine()).toEqual(['e:1', 'e:2', 'e:3']);
    // "old" committed before the consumer existed; it comes only when a transaction
    // older than it was still open somewhere on the (shared) server at registration.
    expect(seen.indexOf('e:"old"')).toBeLessThan(1);
    const last = await pool.query(`SELECT xid::text, id::text FROM ${table} WHERE payload = 'e:3'`);
    await waitFor(async () => (await storedCursor()).id === last.rows[0].id, LONG);
    expect(await storedCursor()).toEqual(last.rows[0]);
  });

  it('the stored cursor stops at the first unsettled row: after a restart it and the rows after it come again', async () => {
    const rows: PgOutboxRow[] = [];
    const r = reader(row => void rows.push(row));
    await r.start();
    await insert('e:1', 'e:2', 'e:3');
    r.wake();
    await waitFor(() => rows.length === 3, LONG);
    r.settle(rows[0], { outcome: 'ack' });
    r.settle(rows[2], { outcome: 'ack' }); // 2 is still running
    await r.close(false);
    expect((await storedCursor()).id).toBe(rows[0].id);

    const again: string[] = [];
    const next = reader((row, self) => {
      again.push(row.payload);
      self.settle(row, { outcome: 'ack' });
    });
    await next.start();
    await waitFor(() => again.length === 2, LONG);
    expect(again).toEqual(['e:2', 'e:3']);
  });

  it('holds at most maxInFlight unsettled rows, and reads on as they settle', async () => {
    const rows: PgOutboxRow[] = [];
    const r = reader(row => void rows.push(row), { maxInFlight: 2 });
    await r.start();
    await insert('e:1', 'e:2', 'e:3', 'e:4', 'e:5');
    r.wake();
    await waitFor(() => rows.length === 2, LONG);
    // A full window does not read at all: a wake returns before any query.
    const reads = r.counters.outboxReads;
    r.wake();
    await settleIo();
    expect(r.counters.outboxReads).toBe(reads);
    expect(rows).toHaveLength(2);
    expect(r.inFlight).toBe(2);
    r.settle(rows[0], { outcome: 'ack' });
    await waitFor(() => rows.length === 3, LONG);
    expect(rows.map(row => row.payload)).toEqual(['e:1', 'e:2', 'e:3']);
  });

  it('a nack is delivered again up to maxAttempts, then dead-lettered; a dead outcome goes there at once', async () => {
    const attempts: number[] = [];
    const r = reader((row, self) => {
      if (row.payload === 'e:"bad"') {
        attempts.push(row.attempt);
        self.settle(row, { outcome: 'nack', error: new Error('nope') });
      } else self.settle(row, { outcome: 'dead', reason: 'undecodable: test' });
    });
    await r.start();
    await insert('e:"bad"', 'e:"junk"');
    r.wake();
    await waitFor(() => r.counters.deadLettered === 2, LONG);
    expect(attempts).toEqual([1, 2, 3]);
    expect(r.counters.redelivered).toBe(2);
    const dead = await pool.query(
      `SELECT payload, attempts, reason FROM ${table}_dead WHERE channel = $1 ORDER BY id`,
      [channel],
    );
    expect(dead.rows).toEqual([
      {
        payload: 'e:"bad"',
        attempts: 3,
        reason: expect.stringMatching(/handler failed 3 time\(s\) \(maxAttempts 3\): .*nope/),
      },
      { payload: 'e:"junk"', attempts: 1, reason: 'undecodable: test' },
    ]);
    await waitFor(async () => (await storedCursor()).id !== '0', LONG);
  });

  it('a row committed by a younger transaction waits while an older one is open (held back), then both come in xid order', async () => {
    const seen: string[] = [];
    const r = reader((row, self) => {
      seen.push(row.payload);
      self.settle(row, { outcome: 'ack' });
    });
    await r.start();
    const older = await pool.connect();
    const younger = await pool.connect();
    try {
      await older.query('BEGIN');
      await older.query(`INSERT INTO ${table} (channel, payload) VALUES ($1, 'e:"older"')`, [
        channel,
      ]);
      await younger.query('BEGIN');
      await younger.query(`INSERT INTO ${table} (channel, payload) VALUES ($1, 'e:"younger"')`, [
        channel,
      ]);
      await younger.query('COMMIT');
      const held = r.counters.outboxHeldBack;
      r.wake();
      await waitFor(() => r.counters.outboxHeldBack > held, LONG);
      expect(seen).toEqual([]);
      await older.query('COMMIT');
      await waitFor(() => seen.length === 2, LONG);
      expect(seen).toEqual(['e:"older"', 'e:"younger"']);
    } finally {
      older.release();
      younger.release();
    }
  });
});
