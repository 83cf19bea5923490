import path from 'node:path';
import { Redis } from 'ioredis';
import { transportConformance } from '../../lib/testing/index.js';
import { createTieredTransport } from '../../lib/transports/create-tiered.js';
import { socketDir } from '../e2e/ipc/ipc-helpers.js';
import { REDIS_URL } from '../helpers/services.js';

// The tiered transport as one more network transport: instances of a scope
// are hosts of their own (one worker each, its own broker and uplink) that
// meet on the scope's stream; 2 hosts x several workers with real processes
// are test/e2e/tiered/.
const admin = new Redis(REDIS_URL, { lazyConnect: true });
const dir = socketDir();
const hosts = new Map<string, number>();

afterAll(() => admin.disconnect());

const make = (scope: string) => {
  const n = hosts.get(scope) ?? 0;
  hosts.set(scope, n + 1);
  return createTieredTransport(
    { socketPath: path.join(dir, `${hosts.size}-${n}.sock`), workerId: 0, workerCount: 1 },
    {
      transport: 'redis',
      host: `${scope}-h${n}`,
      redis: { url: REDIS_URL, stream: `herald:${scope}`, blockMs: 200, nackRetryDelayMs: 50 },
    },
  );
};

transportConformance({
  name: 'tiered (ipc hosts over a redis uplink)',
  features: {
    reach: 'network',
    guarantee: 'at-least-once',
    ordering: 'per-sender',
    uniqueScope: 'network',
    maxPayloadBytes: 65_536,
    redelivers: false,
    loopback: true,
    persistent: false,
  },
  createTransport: make,
  teardown: async scope => {
    await admin.del(`herald:${scope}`, `herald:${scope}:dead`);
  },
});
