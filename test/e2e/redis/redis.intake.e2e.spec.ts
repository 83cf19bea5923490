import { Redis } from 'ioredis';
import { EventBus, InvalidOptionsError, silentLogger } from '../../../lib/index.js';
import { RedisTransport } from '../../../lib/redis/index.js';
import { REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

// `intake: false`: a process that writes to the stream and never reads it
// (what the tiered layout's workers would otherwise need a reader for).
const admin = new Redis(REDIS_URL);
const stream = uniqueName('herald_intake');
const buses: EventBus[] = [];

afterAll(async () => {
  await Promise.all(buses.map(bus => bus.close()));
  await admin.del(stream, `${stream}:dead`);
  admin.disconnect();
});

async function start(intake: boolean): Promise<{ bus: EventBus; got: string[] }> {
  const transport = new RedisTransport({ url: REDIS_URL, stream, blockMs: 100, intake });
  const bus = new EventBus({ transport, logger: silentLogger });
  buses.push(bus);
  const got: string[] = [];
  bus.register(data => void got.push(data as string), 'w');
  await bus.connect();
  bus.start();
  return { bus, got };
}

async function groups(): Promise<number> {
  return ((await admin.xinfo('GROUPS', stream)) as unknown[]).length;
}

it('intake: false publishes without reading: no group, nothing delivered, its posts reach the readers', async () => {
  const reader = await start(true);
  expect(await groups()).toBe(1);
  const writer = await start(false);
  expect(writer.bus.stats().transport['subscriber.read']).toBeUndefined();
  expect(await groups()).toBe(1); // the writer made no group
  const receipt = await writer.bus.post('w', 'x', 'from-writer');
  expect(receipt.ref).toMatch(/^\d+-\d+$/);
  await reader.bus.post('w', 'x', 'from-reader');
  await waitFor(() => reader.got.length === 2, { message: 'the reader to get both posts' });
  expect(reader.got).toEqual(['from-writer', 'from-reader']);
  // The writer's status is its publisher's: connected, and it got nothing, its own post included.
  expect(writer.got).toEqual([]);
  expect(new RedisTransport({ intake: false }).features.loopback).toBe(false);
  expect(new RedisTransport().features.loopback).toBe(true);
});

it('intake must be a boolean', () => {
  expect(() => new RedisTransport({ intake: 'no' as unknown as boolean })).toThrow(
    InvalidOptionsError,
  );
  expect(() => new RedisTransport({ intake: 'no' as unknown as boolean })).toThrow(
    /RedisTransport: intake must be a boolean \(got "no", a string\)/,
  );
});
