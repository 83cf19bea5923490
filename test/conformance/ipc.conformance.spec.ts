import path from 'node:path';
import { IpcTransport } from '../../lib/transports/ipc/ipc.transport.js';
import { socketDir } from '../e2e/ipc/ipc-helpers.js';
import { killAllChildren, spawnNode, type ChildHandle } from '../helpers/processes.js';
import { transportConformance } from '../../lib/testing/index.js';

// The brokers run in a process of their own, so every event the suite posts
// leaves the posting process and comes back through a unix socket. Each
// scope gets its own broker (own queues, own unique cache); its instances
// are workers 0, 1, 2 of it.
const WORKER_COUNT = 3;
const dir = socketDir();
let host: ChildHandle;
const scopes = new Map<
  string,
  { socketPath: string; ready: Promise<unknown>; nextWorkerId: number }
>();

beforeAll(async () => {
  host = spawnNode('test/fixtures/ipc/broker.ts');
  await host.waitForLine('ready');
});

afterAll(async () => {
  await killAllChildren();
});

transportConformance({
  name: 'ipc (brokers in another process)',
  features: new IpcTransport({
    socketPath: path.join(dir, 'x.sock'),
    workerCount: WORKER_COUNT,
    hostBroker: false,
  }).features,
  createTransport: async scope => {
    let entry = scopes.get(scope);
    if (!entry) {
      const socketPath = path.join(dir, `${scopes.size}.sock`);
      host.send(
        `open ${JSON.stringify({ socketPath, workerCount: WORKER_COUNT, unique: { ttlMs: 60_000 } })}`,
      );
      entry = { socketPath, ready: host.waitForLine(`listening ${socketPath}`), nextWorkerId: 0 };
      scopes.set(scope, entry);
    }
    await entry.ready;
    return new IpcTransport({
      socketPath: entry.socketPath,
      workerId: entry.nextWorkerId++,
      workerCount: WORKER_COUNT,
      hostBroker: false,
    });
  },
  teardown: async scope => {
    const entry = scopes.get(scope);
    if (!entry) return;
    host.send(`close ${entry.socketPath}`);
    await host.waitForLine(`closed ${entry.socketPath}`);
  },
});

// Independent instances, no primary: every instance of a scope may host the
// broker; the first to take the broker lock does, and when it closes before
// the others one of them takes over.
const elected = new Map<string, { socketPath: string; nextWorkerId: number }>();

transportConformance({
  name: 'ipc (elected broker, failover)',
  features: new IpcTransport({
    socketPath: path.join(dir, 'y.sock'),
    workerCount: WORKER_COUNT,
    failover: true,
  }).features,
  createTransport: scope => {
    let entry = elected.get(scope);
    if (!entry) {
      entry = { socketPath: path.join(dir, `e${elected.size}.sock`), nextWorkerId: 0 };
      elected.set(scope, entry);
    }
    return new IpcTransport({
      socketPath: entry.socketPath,
      workerId: entry.nextWorkerId++,
      workerCount: WORKER_COUNT,
      failover: true,
    });
  },
});
