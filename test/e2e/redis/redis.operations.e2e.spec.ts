import { Redis } from 'ioredis';
import { EventBus } from '../../../lib/index.js';
import { RedisTransport, StreamPublisher } from '../../../lib/redis/index.js';
import { resolveHeraldHealthOptions } from '../../../lib/terminus/herald-health.options.js';
import { transportHealth } from '../../../lib/terminus/herald-health.rules.js';
import { memoryLogger } from '../../helpers/memory-logger.js';
import { PrivateRedis } from '../../helpers/private-redis.js';
import { REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

// Issue 25 in the redis area: the subscriber's lag for the terminus
// indicator, and log lines an operator can act on (logLine shape, connection
// loss with its reason, recovery with its downtime).

const admin = new Redis(REDIS_URL);
const keys: string[] = [];

afterEach(async () => {
  if (keys.length) await admin.del(...keys.splice(0));
});

afterAll(() => admin.disconnect());

/** Every WARN/ERROR line is `<transport> <code>: <message> [fields]`. */
const LOG_LINE = /^(warn|error) (redis|microservice) [a-z0-9]+(-[a-z0-9]+)*: /;

describe('redis transport operations', () => {
  it('exposes subscriberLag (entries the group has not read) for the terminus indicator, down past maxLag and up again', async () => {
    const stream = uniqueName('lag');
    keys.push(stream, `${stream}:dead`);
    const logger = memoryLogger();
    const bus = new EventBus({
      transport: new RedisTransport({
        url: REDIS_URL,
        stream,
        mode: 'work-queue',
        group: 'g',
        readCount: 1,
        maxInFlight: 1,
        blockMs: 100,
        claimIntervalMs: 50,
      }),
      logger,
    });
    let release!: () => void;
    const gate = new Promise<void>(resolve => (release = resolve));
    let handled = 0;
    bus.register(async () => {
      await gate;
      handled++;
    }, 'app');
    await bus.connect();
    bus.start();
    try {
      await Promise.all(Array.from({ length: 30 }, (_, i) => bus.post('app', 'n', i)));
      const options = resolveHeraldHealthOptions({ maxLag: 10 });
      const health = () =>
        transportHealth('redis', { state: 'connected' }, bus.transport.stats(), options);
      await waitFor(() => (bus.transport.stats().subscriberLag ?? 0) >= 20);
      expect(health()).toMatchObject({
        up: false,
        data: { reason: expect.stringMatching(/consumer lag \d+ exceeds 10/) },
      });
      release();
      await waitFor(() => handled === 30);
      await waitFor(() => bus.transport.stats().subscriberLag === 0);
      expect(health()).toMatchObject({ up: true, data: { lag: 0 } });
    } finally {
      await bus.close({ timeoutMs: 2000 });
    }
    expect(logger.lines.filter(line => /^(warn|error) /.test(line))).toEqual([]);
  });

  it('logs a lost connection at WARN with its reason, the recovery with the downtime, every line in the logLine shape', async () => {
    const server = await new PrivateRedis([], { persistence: false }).start();
    const logger = memoryLogger();
    const pub = new StreamPublisher<string>({
      url: server.url,
      stream: 's',
      logger,
      drainInitialIntervalMs: 20,
      encode: value => ['v', value],
    });
    try {
      await pub.publishAndWait('a');
      await server.kill();
      await waitFor(() => logger.lines.some(line => line.includes('redis-connection-lost')));
      const lost = logger.lines.find(line => line.includes('redis-connection-lost'))!;
      expect(lost).toMatch(
        new RegExp(
          `^warn redis redis-connection-lost: publisher connection lost, reconnecting: .+ \\[role=publisher server=127\\.0\\.0\\.1:${server.port}\\]$`,
        ),
      );
      const pending = pub.publishAndWait('b');
      await server.start();
      await pending;
      await waitFor(() => logger.lines.some(line => line.includes('redis-connection-recovered')));
      const back = logger.lines.find(line => line.includes('redis-connection-recovered'))!;
      expect(back).toMatch(
        /^redis redis-connection-recovered: publisher connection is back after \d+ ms \[role=publisher server=127\.0\.0\.1:\d+ downtimeMs=\d+\]$/,
      );
      // One loss line per outage, not one per reconnection attempt.
      expect(logger.lines.filter(line => line.includes('redis-connection-lost'))).toHaveLength(1);
      for (const line of logger.lines.filter(l => /^(warn|error) /.test(l)))
        expect(line).toMatch(LOG_LINE);
    } finally {
      await pub.close();
      await server.stop();
    }
  });

  it('a connection that never came up logs connect-failed once, naming the server', async () => {
    const server = new PrivateRedis([], { persistence: false });
    await server.start();
    const port = server.port;
    await server.stop();
    const logger = memoryLogger();
    const pub = new StreamPublisher<string>({
      url: `redis://127.0.0.1:${port}`,
      stream: 's',
      logger,
      encode: value => ['v', value],
      shutdownDrainTimeoutMs: 0,
    });
    try {
      pub.publish('x');
      await waitFor(() => logger.lines.some(line => line.includes('redis-connect-failed')));
      expect(logger.lines.find(line => line.includes('redis-connect-failed'))).toMatch(
        new RegExp(
          `^warn redis redis-connect-failed: publisher connection cannot connect, reconnecting: .*ECONNREFUSED.* \\[role=publisher server=127\\.0\\.0\\.1:${port}\\]$`,
        ),
      );
    } finally {
      await pub.close();
    }
    expect(logger.lines.filter(line => line.includes('redis-connect-failed'))).toHaveLength(1);
    for (const line of logger.lines.filter(l => /^(warn|error) /.test(l)))
      expect(line).toMatch(LOG_LINE);
  });
});
