// Issue 27 point 3 on the real PostgreSQL, durable mode: an event its
// schema refuses on arrival (posted by a peer without the schema) goes to
// the dead letters at once, not after maxAttempts handler failures.
import pg from 'pg';
import { z } from 'zod';
import { EventBus, silentLogger, type EventSchemas } from '../../../lib/index.js';
import { PgTransport } from '../../../lib/pg/index.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

const LONG = { timeoutMs: 60_000 };
let admin: pg.Pool;
const buses: EventBus[] = [];
const tables: string[] = [];

async function instance(
  place: { table: string; channel: string },
  consumer: string,
  schemas?: EventSchemas,
): Promise<{ bus: EventBus; transport: PgTransport }> {
  const transport = new PgTransport({
    connectionString: PG_URL,
    reconnectMs: 50,
    channel: place.channel,
    poolSize: 4,
    durable: { table: place.table, consumer, pollMs: 200, cleanupIntervalMs: 0, maxAttempts: 5 },
  });
  const bus = new EventBus({ transport, logger: silentLogger, schemas });
  buses.push(bus);
  await bus.connect();
  bus.start();
  await bus.waitUntilReady();
  return { bus, transport };
}

beforeAll(() => {
  admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
});

afterEach(async () => {
  await Promise.all(buses.splice(0).map(b => b.close({ timeoutMs: 5000 })));
  for (const table of tables.splice(0)) {
    for (const suffix of ['', '_consumers', '_dead'])
      await admin.query(`DROP TABLE IF EXISTS ${table}${suffix}`);
  }
});

afterAll(async () => {
  await admin.end();
});

it('durable: an invalid arrival is dead-lettered on its first delivery; a valid one is handled with the output', async () => {
  const place = {
    table: uniqueName('obs').toLowerCase(),
    channel: uniqueName('sch').toLowerCase(),
  };
  tables.push(place.table);
  const schemas = { orders: { paid: z.object({ amount: z.coerce.number() }) } };
  const receiver = await instance(place, 'receiver', schemas);
  const seen: unknown[] = [];
  receiver.bus.register(data => void seen.push(data), 'orders', 'paid');
  const peer = await instance(place, 'peer');

  await peer.bus.post('orders', 'paid', { amount: 'nope' });
  await waitFor(() => receiver.transport.stats().deadLettered === 1, LONG);
  const { rows } = await admin.query(
    `SELECT attempts, reason FROM ${place.table}_dead WHERE channel = $1`,
    [place.channel],
  );
  expect(rows).toHaveLength(1);
  expect(rows[0].attempts).toBe(1);
  expect(rows[0].reason).toMatch(/^undecodable: .*orders\/paid data is invalid at data\.amount/);
  expect(receiver.bus.stats()).toMatchObject({ invalid: 1, failed: 0, handled: 0 });
  expect(receiver.transport.stats().redelivered).toBe(0);

  await peer.bus.post('orders', 'paid', { amount: '4' });
  await waitFor(() => seen.length === 1, LONG);
  expect(seen).toEqual([{ amount: 4 }]);
}, 120_000);
