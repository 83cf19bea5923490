import { Cluster } from 'ioredis';
import { RedisTransport } from '../../lib/redis/index.js';
import { transportConformance } from '../../lib/testing/index.js';
import { PrivateRedisCluster } from '../helpers/private-redis-cluster.js';

// Issue 28: the redis conformance suite against a real Redis Cluster (3
// masters + 3 replicas started from redis-server binaries); the scope's
// stream carries a hash tag, so each scope lands on whichever node owns it.

const cluster = new PrivateRedisCluster();
let admin: Cluster;

beforeAll(async () => {
  await cluster.start();
  admin = new Cluster(cluster.startupNodes);
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await cluster.stop();
});

transportConformance({
  name: 'redis (cluster)',
  features: new RedisTransport().features,
  createTransport: scope =>
    new RedisTransport({
      cluster: cluster.startupNodes,
      stream: `herald:{${scope}}`,
      mode: 'broadcast',
      startId: '$',
      blockMs: 200,
      nackRetryDelayMs: 50,
    }),
  teardown: async scope => {
    await admin.del(`herald:{${scope}}`, `herald:{${scope}}:dead`);
  },
  busOptions: {},
});
