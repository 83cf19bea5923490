import { Redis } from 'ioredis';
import { silentLogger } from '../../../../lib/index.js';
import { StreamPublisher } from '../../../../lib/redis/index.js';
import { REDIS_URL, uniqueName } from '../../../helpers/services.js';

const admin = new Redis(REDIS_URL);
const stream = uniqueName('parts');

afterAll(async () => {
  await admin.del(stream);
  admin.disconnect();
});

describe('StreamPublisher, values in parts (script mode)', () => {
  it('writes every value byte for byte while a place keeps changing, then repeats, then changes again', async () => {
    // Place 1 changes for 200 values (past the misses that stop its compare
    // and several probes), then repeats (a probe learns it again), then
    // changes; places 0 and 2 repeat throughout (their bytes copied).
    const middle = (i: number): string => (i < 200 ? `id-${i}` : i < 400 ? 'same-é' : `again-${i}`);
    const items = Array.from({ length: 600 }, (_, i) => i);
    const pub = new StreamPublisher<number>({
      url: REDIS_URL,
      logger: silentLogger,
      stream,
      writeMode: 'script',
      encode: i => ['h', ['["', middle(i), '",' + 'k'.repeat(20), `${i % 3}`]],
    });
    try {
      // In a few batches, so the cache carries over from one write to the next.
      for (let at = 0; at < items.length; at += 150) {
        const results = await pub.publishAll(items.slice(at, at + 150));
        expect(results.every(r => typeof r === 'string')).toBe(true);
      }
      const entries = await admin.xrange(stream, '-', '+');
      expect(entries.map(([, f]) => f)).toEqual(
        items.map(i => ['h', `["${middle(i)}",${'k'.repeat(20)}${i % 3}`]),
      );
    } finally {
      await pub.close();
    }
  });
});
