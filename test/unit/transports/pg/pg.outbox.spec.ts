import pg from 'pg';
import { EventBus, type HeraldEvent } from '../../../../lib/index.js';
import { PgTransport } from '../../../../lib/pg/index.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';
import { waitFor } from '../../../helpers/wait-for.js';

/** PgOutbox: rows to envelopes (undecodable ones to the dead letters), the bus's settle back. */
describe('PgOutbox', () => {
  let pool: pg.Pool;
  let bus: EventBus;
  let transport: PgTransport;
  const table = uniqueName('obo').toLowerCase();
  const channel = uniqueName('oboc').toLowerCase();
  const got: HeraldEvent[] = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
    transport = new PgTransport({
      connectionString: PG_URL,
      channel,
      durable: { table, pollMs: 100, cleanupIntervalMs: 0, consumer: 'unit-outbox' },
    });
    bus = new EventBus({ logger: memoryLogger(), transport });
    await bus.connect();
    bus.start();
    bus.register((_data, event) => void got.push(event));
  });
  afterAll(async () => {
    await bus.close();
    for (const suffix of ['', '_consumers', '_dead'])
      await pool.query(`DROP TABLE IF EXISTS ${table}${suffix}`);
    await pool.end();
  });

  it('moves undecodable rows to the dead letters with the reason and delivers the rest', async () => {
    for (const payload of ['not-a-hub-payload', 'e:{"herald":1,"id":'])
      await pool.query(`INSERT INTO ${table} (channel, payload) VALUES ($1, $2)`, [
        channel,
        payload,
      ]);
    await bus.post('s', 'after', { ok: true });
    await waitFor(() => got.length === 1 && transport.stats().deadLettered === 2, {
      timeoutMs: 30_000,
    });
    expect(got[0]).toMatchObject({ source: 's', event: 'after', data: { ok: true }, attempt: 1 });
    expect(transport.stats().undecodable).toBe(2);
    const dead = await pool.query(`SELECT reason FROM ${table}_dead ORDER BY id`);
    expect(dead.rows.map(row => row.reason)).toEqual([
      'undecodable: does not start with "e"',
      'undecodable: bad JSON',
    ]);
  });

  it('hands a plain pg-hub value written to the outbox on as a foreign event', async () => {
    await pool.query(`INSERT INTO ${table} (channel, payload) VALUES ($1, $2)`, [
      channel,
      'e7:{"op":"insert"}',
    ]);
    await waitFor(() => got.some(e => e.event === 'insert'), { timeoutMs: 30_000 });
    expect(got.find(e => e.event === 'insert')).toMatchObject({ source: channel, key: [7n] });
  });
});
