import { Redis } from 'ioredis';
import { silentLogger } from '../../../lib/index.js';
import { StreamPublisher, StreamSubscriber } from '../../../lib/redis/index.js';
import { PrivateRedis } from '../../helpers/private-redis.js';
import { waitFor } from '../../helpers/wait-for.js';

// Issue 20 point 4: a Redis that answers LOADING after a restart. How fast
// writes resume is measured in bench/redis-recovery.bench.ts; here: that the
// publisher and a group subscriber get through a long LOADING phase on their
// own, and that LOADING never grows the write back-off.

describe('a restart with a long LOADING phase (private Redis, slowed loading)', () => {
  // key-load-delay (µs per key) and a small events interval make the load last and answer LOADING meanwhile.
  const server = new PrivateRedis([
    '--enable-debug-command',
    'yes',
    '--key-load-delay',
    '100',
    '--loading-process-events-interval-bytes',
    '1024',
  ]);

  beforeAll(async () => {
    await server.start();
    const admin = new Redis(server.url);
    await admin.call('DEBUG', 'POPULATE', '5000', 'load', '10');
    await admin.bgrewriteaof();
    await waitFor(async () => /aof_rewrite_in_progress:0/.test(await admin.info('persistence')));
    admin.disconnect();
  });

  afterAll(() => server.stop());

  it.each([
    ['with the ready check (default)', {}],
    // Without it commands meet LOADING themselves: retried on a short fixed delay, never a 60 s back-off.
    [
      'without the ready check: LOADING replies retried on a short delay',
      { enableReadyCheck: false },
    ],
  ])(
    '%s: the publisher writes and the subscriber reads again once loading ends',
    async (_label, redis) => {
      const stream = `loading-${Object.keys(redis).length}`;
      const publisher = new StreamPublisher<string>({
        url: server.url,
        redis,
        stream,
        logger: silentLogger,
        drainInitialIntervalMs: 60_000,
        encode: value => ['v', value],
      });
      const subscriber = new StreamSubscriber({
        url: server.url,
        redis,
        stream,
        name: 'sub',
        logger: silentLogger,
        blockMs: 100,
        readBackoffInitialMs: 60_000,
        group: { name: 'g', startId: '0' },
      });
      const seen: string[] = [];
      try {
        await subscriber.subscribe(message => void seen.push(message.fields.v));
        await publisher.publishAndWait('before');
        await waitFor(() => seen.includes('before'));
        await server.kill();
        const written = publisher.publishAndWait('after');
        await server.start();
        // The probe saw the server up; it may still be loading (start() waits for PONG).
        await written;
        await waitFor(() => seen.includes('after'), { timeoutMs: 20_000 });
        expect(publisher.stats()).toMatchObject({ written: 2, failed: 0, dropped: 0 });
      } finally {
        await subscriber.close({ timeoutMs: 500 });
        await publisher.close();
      }
    },
  );
});
