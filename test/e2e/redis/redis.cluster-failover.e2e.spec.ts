import { Cluster } from 'ioredis';
import { EventBus, silentLogger } from '../../../lib/index.js';
import {
  RedisTransport,
  ReplicasNotConfirmedError,
  StreamPublisher,
} from '../../../lib/redis/index.js';
import { PrivateRedisCluster, rawCommand } from '../../helpers/private-redis-cluster.js';
import { waitFor } from '../../helpers/wait-for.js';

// Issue 28 point 3: failover of a real Redis Cluster (3 masters + 3
// replicas) under load. A manual CLUSTER FAILOVER loses no acknowledged
// event in group mode (duplicates counted); with waitReplicas (WAIT) every
// post that resolved survives the SIGKILL of its master.

/** Posts in flight at once while the failover runs. */
const WINDOW = 20;

/**
 * A turn of the event loop between two batches: posts that fail at once
 * (a closed bus) settle in microtasks, and a loop of them alone would starve
 * every timer, the test's own timeouts included.
 */
const turn = (): Promise<void> => new Promise(resolve => setImmediate(resolve));

describe('Redis Cluster failover', () => {
  let cluster: PrivateRedisCluster;

  beforeEach(async () => {
    cluster = await new PrivateRedisCluster().start();
  }, 60_000);

  afterEach(async () => {
    await cluster.stop();
  });

  it('CLUSTER FAILOVER on the replica under publish and group-consume load: every resolved post is handled (duplicates counted)', async () => {
    const stream = 'orders:{fo}';
    const { replica } = await cluster.ownerOf(await cluster.slotOf(stream));
    const buses: EventBus[] = [];
    const handled = new Map<number, number>();
    for (let i = 0; i < 2; i++) {
      const bus = new EventBus({
        transport: new RedisTransport({
          cluster: cluster.startupNodes,
          stream,
          mode: 'work-queue',
          group: 'g',
          blockMs: 100,
          drainInitialIntervalMs: 20,
          drainMaxBackoffMs: 200,
          nackRetryDelayMs: 20,
          minIdleMs: 1000,
          claimIntervalMs: 200,
        }),
        logger: silentLogger,
      });
      bus.register(
        data => void handled.set(data as number, (handled.get(data as number) ?? 0) + 1),
        'orders',
      );
      await bus.connect();
      bus.start();
      buses.push(bus);
    }
    // Set when the test ends, however it ends: the load stops with it (a
    // failed wait must not leave it posting to closed buses for ever).
    let ended = false;
    try {
      const resolved: number[] = [];
      let rejected = 0;
      let failedOver = false;
      let n = 0;
      const load = (async () => {
        // Keep posting until the failover is done and 200 more posts went through.
        let after = 0;
        while (after < 200 && !ended) {
          await turn();
          const batch = Array.from({ length: WINDOW }, () => n++);
          const outcomes = await Promise.allSettled(
            batch.map(i => buses[i % 2].post('orders', 'created', i)),
          );
          outcomes.forEach((outcome, j) => {
            if (outcome.status === 'fulfilled') resolved.push(batch[j]);
            else rejected++;
          });
          if (failedOver) after += WINDOW;
        }
      })();
      await waitFor(() => resolved.length >= 200);
      expect(await rawCommand(replica!.port, 'CLUSTER FAILOVER')).toBe('+OK');
      await waitFor(async () => (await rawCommand(replica!.port, 'ROLE')).includes('master'), {
        timeoutMs: 20_000,
      });
      failedOver = true;
      await load;
      await waitFor(() => resolved.every(i => handled.has(i)), { timeoutMs: 30_000 });
      const duplicates = [...handled.values()].reduce((sum, count) => sum + count - 1, 0);
      // No acknowledged (resolved) post lost; duplicates are allowed (at-least-once) and counted.
      expect(resolved.filter(i => !handled.has(i))).toEqual([]);
      expect(resolved.length).toBeGreaterThan(400);
      expect(duplicates).toBeGreaterThanOrEqual(0);
      expect(rejected).toBe(0);
    } finally {
      ended = true;
      await Promise.all(buses.map(b => b.close({ timeoutMs: 2000 })));
    }
  }, 120_000);

  it('waitReplicas: every post resolved after its WAIT survives the SIGKILL of its master', async () => {
    const stream = 'audit:{wk}';
    const { master } = await cluster.ownerOf(await cluster.slotOf(stream));
    const pub = new StreamPublisher<string>({
      cluster: cluster.startupNodes,
      stream,
      logger: silentLogger,
      encode: v => ['v', v],
      waitReplicas: 1,
      waitTimeoutMs: 500,
      drainInitialIntervalMs: 20,
      drainMaxBackoffMs: 200,
      maxLen: 0,
    });
    const resolved: string[] = [];
    const unconfirmed: string[] = [];
    let n = 0;
    let killed = false;
    let after = 0;
    let ended = false;
    try {
      const load = (async () => {
        while (after < 100 && !ended) {
          await turn();
          const batch = Array.from({ length: WINDOW }, () => String(n++));
          const results = await pub.publishAll(batch);
          results.forEach((result, j) => {
            if (typeof result === 'string') resolved.push(batch[j]);
            else if (result instanceof ReplicasNotConfirmedError) unconfirmed.push(batch[j]);
          });
          if (killed) after += WINDOW;
        }
      })();
      await waitFor(() => resolved.length >= 200);
      await master.kill();
      killed = true;
      await load;
      await cluster.waitHealthy();
      const admin = new Cluster(cluster.startupNodes.filter(node => node.port !== master.port));
      try {
        // Until every node's view has the promoted replica (CLUSTERDOWN meanwhile).
        let entries: [string, string[]][] = [];
        await waitFor(
          async () => {
            try {
              entries = await admin.xrange(stream, '-', '+');
              return true;
            } catch {
              return false;
            }
          },
          { timeoutMs: 20_000 },
        );
        const stored = new Set(entries.map(([, fields]) => fields[1]));
        expect(resolved.filter(v => !stored.has(v))).toEqual([]);
      } finally {
        admin.disconnect();
      }
      expect(pub.stats().unconfirmed).toBe(unconfirmed.length);
    } finally {
      ended = true;
      await pub.close();
    }
  }, 120_000);
});
