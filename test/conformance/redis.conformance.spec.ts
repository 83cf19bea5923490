import { Redis } from 'ioredis';
import { RedisTransport } from '../../lib/redis/index.js';
import { REDIS_URL } from '../helpers/services.js';
import { transportConformance } from '../../lib/testing/index.js';

const admin = new Redis(REDIS_URL, { lazyConnect: true });

afterAll(() => admin.disconnect());

transportConformance({
  name: 'redis',
  features: new RedisTransport().features,
  // Instances of one scope share one stream; each is its own broadcast group.
  createTransport: scope =>
    new RedisTransport({
      url: REDIS_URL,
      stream: `herald:${scope}`,
      mode: 'broadcast',
      startId: '$',
      blockMs: 200,
      nackRetryDelayMs: 50,
    }),
  teardown: async scope => {
    await admin.del(`herald:${scope}`, `herald:${scope}:dead`);
  },
  busOptions: {},
});
