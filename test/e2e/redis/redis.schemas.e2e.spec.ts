// Issue 27 point 3 on a real Redis: an event its schema refuses on arrival
// (posted by a peer without the schema) is dead-lettered at once on a
// group, never retried as a handler failure, never handed to a handler.
import { Redis } from 'ioredis';
import { z } from 'zod';
import { EventBus, silentLogger, type EventSchemas } from '../../../lib/index.js';
import {
  RedisTransport,
  fieldsToRecord,
  type RedisTransportOptions,
} from '../../../lib/redis/index.js';
import { REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

const admin = new Redis(REDIS_URL);
const buses: EventBus[] = [];
const keys: string[] = [];

async function instance(options: RedisTransportOptions, schemas?: EventSchemas): Promise<EventBus> {
  const transport = new RedisTransport({
    url: REDIS_URL,
    blockMs: 100,
    nackRetryDelayMs: 20,
    ...options,
  });
  const bus = new EventBus({ transport, logger: silentLogger, schemas });
  buses.push(bus);
  await bus.connect();
  bus.start();
  return bus;
}

afterEach(async () => {
  await Promise.all(buses.splice(0).map(bus => bus.close({ timeoutMs: 2000 })));
  if (keys.length) await admin.del(...keys.splice(0));
});

afterAll(() => admin.disconnect());

it('work queue: an invalid arrival is dead-lettered at once; a valid one is handled with the output', async () => {
  const name = uniqueName('schemas');
  const group = uniqueName('g');
  keys.push(name, `${name}:dead`);
  const schemas = { orders: { paid: z.object({ amount: z.coerce.number() }) } };
  const worker = await instance(
    { stream: name, mode: 'work-queue', group, maxDeliveries: 5 },
    schemas,
  );
  const seen: unknown[] = [];
  worker.register(data => void seen.push(data), 'orders', 'paid');
  // A peer without the schema: its post is not checked before sending.
  const peer = await instance({ stream: name, mode: 'work-queue', group: uniqueName('other') });

  await peer.post('orders', 'paid', { amount: 'not a number' });
  await waitFor(async () => (await admin.xlen(`${name}:dead`)) === 1);
  const [[, fields]] = await admin.xrange(`${name}:dead`, '-', '+');
  expect(fieldsToRecord(fields).dead_reason).toMatch(
    /^undecodable: .*orders\/paid data is invalid at data\.amount/,
  );
  expect(worker.stats()).toMatchObject({ invalid: 1, failed: 0, handled: 0 });
  // Dead-lettered on the first delivery: no retry as a handler failure.
  expect(worker.stats().transport).toMatchObject({ 'subscriber.undecodable': 1 });
  await waitFor(async () => (await admin.xpending(name, group))[0] === 0);

  await peer.post('orders', 'paid', { amount: '12' });
  await waitFor(() => seen.length === 1);
  expect(seen).toEqual([{ amount: 12 }]);
  expect(await admin.xlen(`${name}:dead`)).toBe(1);
});
