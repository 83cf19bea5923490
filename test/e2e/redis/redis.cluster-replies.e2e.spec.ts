import { Redis } from 'ioredis';
import type { HeraldLogger } from '../../../lib/index.js';
import { RedisClusterError, StreamPublisher, StreamSubscriber } from '../../../lib/redis/index.js';
import { PrivateRedis } from '../../helpers/private-redis.js';
import { waitFor } from '../../helpers/wait-for.js';

// Issue 20 point 7: against Redis Cluster nodes, MOVED / ASK / CLUSTERDOWN are
// reported as what they are, and never taken for "scripts refused".

function recording(): HeraldLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: () => undefined,
    debug: () => undefined,
    warn: message => void lines.push(`WARN ${message}`),
    error: message => void lines.push(`ERROR ${message}`),
  };
}

const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'];

describe('Redis Cluster replies (two private cluster nodes, one private node without slots)', () => {
  const owner = new PrivateRedis(clusterArgs, { persistence: false });
  const other = new PrivateRedis(clusterArgs, { persistence: false });
  const empty = new PrivateRedis(clusterArgs, { persistence: false });
  const clients: Redis[] = [];
  let ownerClient: Redis;
  let otherClient: Redis;

  beforeAll(async () => {
    await Promise.all([owner.start(), other.start(), empty.start()]);
    ownerClient = new Redis(owner.url);
    otherClient = new Redis(other.url);
    clients.push(ownerClient, otherClient);
    await ownerClient.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    await otherClient.call('CLUSTER', 'MEET', '127.0.0.1', String(owner.port));
    // `other` answers MOVED once gossip told it who owns the slots.
    await waitFor(
      async () => {
        try {
          await otherClient.get('probe');
          return false;
        } catch (error) {
          return (error as Error).message.startsWith('MOVED');
        }
      },
      { timeoutMs: 20_000 },
    );
  });

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await Promise.all([owner.stop(), other.stop(), empty.stop()]);
  });

  it('MOVED: a write fails with RedisClusterError naming it, and the publisher keeps its script write path', async () => {
    const logger = recording();
    const pub = new StreamPublisher<string>({
      url: other.url,
      stream: 'moved',
      logger,
      encode: value => ['v', value],
    });
    try {
      const error = await pub.publishAndWait('a').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisClusterError);
      expect((error as RedisClusterError).reply).toBe('MOVED');
      expect((error as Error).message).toMatch(/Redis Cluster/);
      expect(logger.lines.some(line => line.includes('using a pipeline'))).toBe(false);
      const second = await pub.publishAndWait('b').catch((e: unknown) => e);
      expect((second as RedisClusterError).reply).toBe('MOVED');
      expect(pub.stats()).toMatchObject({ clusterRefused: 2, written: 0, scriptWrites: 0 });
    } finally {
      await pub.close();
    }
  });

  it('ASK: a write to a slot being migrated fails with RedisClusterError naming it', async () => {
    const key = 'asked-stream';
    const slot = Number(await ownerClient.call('CLUSTER', 'KEYSLOT', key));
    const otherId = String(await otherClient.call('CLUSTER', 'MYID'));
    await ownerClient.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', otherId);
    const pub = new StreamPublisher<string>({
      url: owner.url,
      stream: key,
      logger: recording(),
      writeMode: 'pipeline',
      encode: value => ['v', value],
    });
    try {
      const error = await pub.publishAndWait('a').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisClusterError);
      expect((error as RedisClusterError).reply).toBe('ASK');
    } finally {
      await pub.close();
      await ownerClient.call('CLUSTER', 'SETSLOT', String(slot), 'STABLE');
    }
  });

  it('CLUSTERDOWN: writes are retried with back-off, the log names the cluster state', async () => {
    const logger = recording();
    const pub = new StreamPublisher<string>({
      url: empty.url,
      stream: 'down',
      logger,
      drainInitialIntervalMs: 20,
      shutdownDrainTimeoutMs: 0,
      encode: value => ['v', value],
    });
    const waiting = pub.publishAndWait('a').catch((e: unknown) => e);
    await waitFor(() => logger.lines.some(line => /CLUSTERDOWN.*Redis Cluster/.test(line)));
    expect(pub.stats()).toMatchObject({ written: 0, failed: 0, clusterRefused: 0 });
    expect(logger.lines.some(line => line.includes('using a pipeline'))).toBe(false);
    await pub.close();
    expect(await waiting).toBeInstanceOf(Error);
  });

  it('a group subscriber on a node that does not own the stream fails to subscribe with RedisClusterError (MOVED)', async () => {
    const s = new StreamSubscriber({
      url: other.url,
      stream: 'moved-read',
      name: 'sub',
      logger: recording(),
      group: 'g',
    });
    try {
      const error = await s.subscribe(() => undefined).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisClusterError);
      expect((error as RedisClusterError).reply).toBe('MOVED');
    } finally {
      await s.close({ timeoutMs: 100 });
    }
  });
});
