import path from 'node:path';
import { IpcBroker } from '../../../lib/transports/ipc/ipc.broker.js';
import { killAllChildren, type ChildHandle } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait-for.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { command, memoryLogger, received, socketDir, startWorker } from './ipc-helpers.js';

const dir = socketDir();
let n = 0;
const brokers: IpcBroker[] = [];

async function broker(
  workerCount: number,
  extra: { maxQueueLength?: number; ttlMs?: number } = {},
) {
  const logger = memoryLogger();
  const b = new IpcBroker(
    {
      socketPath: path.join(dir, `b${n++}.sock`),
      workerCount,
      maxQueueLength: extra.maxQueueLength,
      unique: { ttlMs: extra.ttlMs ?? 60_000 },
    },
    { logger },
  );
  await b.listen();
  brokers.push(b);
  return { broker: b, logger, socketPath: b.socketPath };
}

async function cleanup(): Promise<void> {
  await killAllChildren();
  await Promise.all(brokers.splice(0).map(b => b.close()));
}

describe('ipc e2e: 4 real worker processes sharing one broker', () => {
  let b: IpcBroker;
  let workers: ChildHandle[];

  beforeAll(async () => {
    ({ broker: b } = await broker(4));
    brokers.splice(brokers.indexOf(b), 1);
    workers = await Promise.all(
      [0, 1, 2, 3].map(workerId =>
        startWorker({ socketPath: b.socketPath, workerId, workerCount: 4 }),
      ),
    );
  });

  afterAll(async () => {
    await killAllChildren();
    await b.close();
  });

  it('broadcasts every post to 4 workers, the sender included, all in one global order', async () => {
    workers.forEach((w, i) =>
      command(w, { cmd: 'post', source: 'bc', event: 'tick', data: `w${i}-`, count: 25 }),
    );
    await waitFor(() => workers.every(w => received(w, 'bc').length === 100), {
      timeoutMs: 20_000,
    });
    const orders = workers.map(w => received(w, 'bc'));
    for (const order of orders.slice(1)) expect(order).toEqual(orders[0]);
    expect(new Set(orders[0]).size).toBe(100);
    // Per sender, posting order is kept inside the global order.
    for (let i = 0; i < 4; i++) {
      const mine = orders[0]
        .filter(line => line.includes(`"w${i}-`))
        .map(line => Number(/-(\d+)"/.exec(line)![1]));
      expect(mine).toEqual(Array.from({ length: 25 }, (_, k) => k));
    }
  });

  it('runs a unique event in exactly one worker; repeats within the TTL are dropped', async () => {
    for (const w of workers) {
      command(w, {
        cmd: 'post',
        source: 'cache',
        event: 'refresh',
        data: 'r',
        unique: 'cache-key-1',
      });
    }
    await waitFor(
      () => workers.every(w => w.count('posted 1 0') >= 1) && b.stats().uniqueDropped === 3,
    );
    // A broadcast posted after the four: once every worker saw it, every earlier event was delivered.
    command(workers[0], { cmd: 'post', source: 'marker', event: 'm', data: 'after' });
    await waitFor(() => workers.every(w => received(w, 'marker').length === 1));
    const runs = workers.map(w => received(w, 'cache').length);
    expect(runs.reduce((x, y) => x + y, 0)).toBe(1);
    expect(b.stats().uniqueDropped).toBe(3);
  });

  it("handles a postLocal before the same process's earlier post", async () => {
    const [w, other] = workers;
    command(w, { cmd: 'post', source: 'order', event: 'x', data: 'remote', thenLocal: 'local' });
    await waitFor(() => received(w, 'order').length === 2 && received(other, 'order').length === 1);
    expect(received(w, 'order')).toEqual(['order/x "local" local', 'order/x "remote" remote']);
    // postLocal never left the process.
    expect(received(other, 'order')).toEqual(['order/x "remote" remote']);
  });
});

describe('ipc e2e: real worker processes', () => {
  afterEach(cleanup);

  it('keeps events for a worker that starts late', async () => {
    const { socketPath } = await broker(2);
    const first = await startWorker({ socketPath, workerId: 0, workerCount: 2 });
    command(first, { cmd: 'post', source: 'early', event: 'e', data: 'before-1-connected' });
    await first.waitForLine('posted 1 0');
    const late = await startWorker({ socketPath, workerId: 1, workerCount: 2 });
    await waitFor(() => received(late, 'early').length === 1);
    expect(received(late, 'early')).toEqual(['early/e "before-1-connected" remote']);
  });

  it('gives a SIGKILLed and restarted worker what was queued for it', async () => {
    const { broker: b, socketPath } = await broker(2);
    const poster = await startWorker({ socketPath, workerId: 0, workerCount: 2 });
    const victim = await startWorker({ socketPath, workerId: 1, workerCount: 2 });
    await victim.kill('SIGKILL');
    await waitFor(() => b.connectedWorkers.length === 1);
    command(poster, { cmd: 'post', source: 'queued', event: 'q', data: 'n', count: 5 });
    await poster.waitForLine('posted 5 0');
    const successor = await startWorker({ socketPath, workerId: 1, workerCount: 2 });
    await waitFor(() => received(successor, 'queued').length === 5);
    expect(received(successor, 'queued')).toEqual(
      [0, 1, 2, 3, 4].map(i => `queued/q "n${i}" remote`),
    );
  });

  it('retries a stream cut mid-way and delivers each event once, in order', async () => {
    const { broker: b, socketPath } = await broker(2);
    // Cut a worker's connection mid-stream: the proxy sits on the unix socket.
    const proxy = new TcpProxy({ path: socketPath });
    const proxyPath = path.join(dir, `proxy${n++}.sock`);
    await proxy.start(proxyPath);
    try {
      const receiver = await startWorker({ socketPath, workerId: 1, workerCount: 2 });
      const poster = await startWorker({
        socketPath: proxyPath,
        workerId: 0,
        workerCount: 2,
      });
      const rounds = 4;
      const per = 1500;
      const expected: string[] = [];
      for (let round = 0; round < rounds; round++) {
        const before = received(receiver, 'cut').length;
        command(poster, { cmd: 'post', source: 'cut', event: 'c', data: `r${round}-`, count: per });
        for (let i = 0; i < per; i++) expected.push(`cut/c "r${round}-${i}" remote`);
        // Cut the poster's connection as soon as this round starts arriving.
        await waitFor(() => received(receiver, 'cut').length > before);
        proxy.reset();
        await waitFor(() => poster.count('posted') === round + 1, { timeoutMs: 30_000 });
        expect(poster.count(`posted ${per} 0`)).toBe(round + 1);
      }
      await waitFor(() => received(receiver, 'cut').length >= expected.length, {
        timeoutMs: 30_000,
      });
      // A marker after the stream: anything duplicated would have arrived before it.
      command(poster, { cmd: 'post', source: 'marker', event: 'm', data: 'end' });
      await waitFor(() => received(receiver, 'marker').length === 1);
      expect(received(receiver, 'cut')).toEqual(expected);
      expect(poster.count('status disconnected')).toBeGreaterThanOrEqual(1);
      expect(b.stats().posted).toBe(rounds * per + 1);
    } finally {
      await proxy.close();
    }
  });
});

describe('ipc e2e: back-pressure', () => {
  afterEach(cleanup);

  it('slows posters down to a slow worker and loses nothing; queues stay bounded', async () => {
    const maxQueueLength = 20;
    const { broker: b, socketPath } = await broker(2, { maxQueueLength });
    const slow = await startWorker({
      socketPath,
      workerId: 1,
      workerCount: 2,
      maxQueueLength,
      slowMs: 2,
    });
    const poster = await startWorker({
      socketPath,
      workerId: 0,
      workerCount: 2,
      maxQueueLength,
      postTimeoutMs: 60_000,
    });
    command(poster, { cmd: 'post', source: 'bp', event: 'x', data: 'v', count: 300 });
    await poster.waitForLine('posted 300 0', 30_000);
    await waitFor(() => received(slow, 'bp').length === 300, { timeoutMs: 30_000 });
    expect(received(slow, 'bp')).toEqual(
      Array.from({ length: 300 }, (_, i) => `bp/x "v${i}" remote`),
    );
    expect(Math.max(...b.queueHighWaters())).toBeLessThanOrEqual(maxQueueLength);
    expect(b.stats().dropped).toBe(0);
  });

  it('rejects a post with QueueFullError after postTimeoutMs; what was accepted is delivered, what was rejected never', async () => {
    const maxQueueLength = 10;
    const { broker: b, socketPath } = await broker(2, { maxQueueLength });
    const slow = await startWorker({
      socketPath,
      workerId: 1,
      workerCount: 2,
      maxQueueLength,
      slowMs: 40,
    });
    const poster = await startWorker({
      socketPath,
      workerId: 0,
      workerCount: 2,
      maxQueueLength,
      postTimeoutMs: 30,
    });
    command(poster, { cmd: 'post', source: 'rj', event: 'x', data: 'v', count: 60 });
    const line = await poster.waitForLine(/^posted /);
    const [, ok, rejected, names] = line.split(' ');
    expect(Number(rejected)).toBeGreaterThan(0);
    expect(names).toBe('QueueFullError');
    await waitFor(() => received(poster, 'rj').length === Number(ok));
    await waitFor(() => received(slow, 'rj').length === Number(ok));
    command(poster, { cmd: 'post', source: 'marker', event: 'm', data: 'end' });
    await waitFor(() => received(slow, 'marker').length === 1);
    expect(received(slow, 'rj')).toEqual(received(poster, 'rj').map(l => l));
    expect(received(slow, 'rj')).toHaveLength(Number(ok));
    expect(Math.max(...b.queueHighWaters())).toBeLessThanOrEqual(maxQueueLength);
    // Rejected at the broker (waited past the deadline there) or before sending (the window stayed full).
    command(poster, { cmd: 'stats' });
    const stats = JSON.parse((await poster.waitForLine(/^stats /)).slice(6));
    expect(stats.transport.rejected).toBe(Number(rejected));
    expect(b.stats().rejected).toBeLessThanOrEqual(Number(rejected));
  });
});
