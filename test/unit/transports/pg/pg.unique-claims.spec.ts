import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { PgUniqueClaims } from '../../../../lib/transports/pg/pg.unique-claims.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';

describe('PgUniqueClaims on a real PostgreSQL', () => {
  let pool: pg.Pool;
  const table = uniqueName('uclaims').toLowerCase();
  const claims = () =>
    new PgUniqueClaims({ pool, table, purgeMs: 60_000, timeoutMs: 200, logger: () => undefined });

  beforeAll(() => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 3 });
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('the first id of a key wins; repeats and other receivers lose; a quote in a key is data', async () => {
    const a = claims();
    const b = claims();
    const key = `k'"; DROP TABLE x; --${randomUUID()}`;
    expect(await a.claim(key, 'id-1', 60_000)).toBe(true);
    expect(await b.claim(key, 'id-1', 60_000)).toBe(false);
    expect(await a.claim(key, 'id-2', 60_000)).toBe(false);
  });

  it('an expired claim is taken by a later post', async () => {
    const a = claims();
    const key = randomUUID();
    expect(await a.claim(key, 'id-1', 1)).toBe(true);
    await pool.query('SELECT pg_sleep(0.01)');
    expect(await a.claim(key, 'id-2', 60_000)).toBe(true);
  });

  it('a claim on a row another transaction holds fails after timeoutMs; other keys go on', async () => {
    const a = claims();
    const key = randomUUID();
    await a.claim(randomUUID(), 'warm', 1000);
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`INSERT INTO ${table} VALUES ($1, 'h', now() + interval '1 hour')`, [key]);
      const stuck = a.claim(key, 'id-1', 60_000);
      expect(await a.claim(randomUUID(), 'id-2', 60_000)).toBe(true);
      await expect(stuck).rejects.toThrow(/lock timeout|statement timeout/);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
  });
});
