import path from 'node:path';
import { EventBus, TransportClosedError } from '../../../lib/index.js';
import { IpcTransport } from '../../../lib/transports/ipc/ipc.transport.js';
import { killAllChildren, spawnNode } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait-for.js';
import {
  command,
  memoryLogger,
  received,
  socketDir,
  spawnWorker,
  startWorker,
} from './ipc-helpers.js';

// Issue 21 point 3: closing the process that hosts the broker (SIGTERM, Nest's
// enableShutdownHooks) loses nothing acknowledged: its broker drains the
// queues of the workers that stay, bounded; posters' copies go to the next broker.
const dir = socketDir();

afterAll(() => killAllChildren());

describe('ipc e2e: shutdown of the broker process', () => {
  it('SIGTERM to the Nest app hosting the broker: a slow worker still gets every acknowledged post, its own and the others', async () => {
    const socketPath = path.join(dir, 'sd.sock');
    const ipc = { socketPath, workerCount: 3, failover: true };
    const host = spawnNode('test/fixtures/ipc/nest-host.ts', {
      env: { IPC_OPTIONS: JSON.stringify({ ...ipc, workerId: 0 }) },
    });
    await host.waitForLine('ready', 60_000);
    const slow = await startWorker({ ...ipc, workerId: 1, slowMs: 5 }, false);
    const poster = await startWorker({ ...ipc, workerId: 2 }, false);
    await Promise.all([slow.waitForLine('ready 1', 60_000), poster.waitForLine('ready 2', 60_000)]);
    expect(slow.lines).toContain('status connected worker');
    host.send('post 300 h');
    command(poster, { cmd: 'post', source: 'sd', event: 'tick', data: 'p', count: 300 });
    await host.waitForLine('posted 300', 30_000);
    await poster.waitForLine('posted 300 0', 30_000);
    // Acknowledged, and the slow worker is far behind.
    expect(received(slow, 'sd').length).toBeLessThan(600);
    host.child.kill('SIGTERM');
    await host.waitForLine('closed', 30_000);
    // Nest re-raises the signal once its hooks ran.
    await host.exited;
    const expected = [
      ...Array.from({ length: 300 }, (_, i) => `sd/tick "h${i}" remote`),
      ...Array.from({ length: 300 }, (_, i) => `sd/tick "p${i}" remote`),
    ];
    await waitFor(
      () => {
        const got = new Set(received(slow, 'sd'));
        return expected.every(event => got.has(event));
      },
      { timeoutMs: 60_000, message: 'the slow worker to receive all 600 acknowledged posts' },
    );
    expect(host.count('undelivered to worker')).toBe(0);
    // Effectively once.
    const got = received(slow, 'sd');
    expect(got.length).toBe(new Set(got).size);
  }, 180_000);

  it('close() while the broker never comes up ends at its timeout: the pending connect and the waiting posts reject with TransportClosedError, a warning counts them', async () => {
    const logger = memoryLogger();
    const transport = new IpcTransport({
      socketPath: path.join(dir, 'never.sock'),
      workerId: 1,
      workerCount: 2,
      hostBroker: false,
    });
    const bus = new EventBus({ transport, logger });
    const connect = bus.connect();
    const posts = [bus.post('never', 'tick', 1), bus.post('never', 'tick', 2)];
    const outcomes = Promise.allSettled([connect, ...posts]);
    // Retrying: no broker socket exists, and none will.
    await waitFor(() => bus.state === 'reconnecting' || bus.state === 'connecting');
    await bus.close({ timeoutMs: 300 });
    const settled = await outcomes;
    for (const outcome of settled) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(TransportClosedError);
    }
    expect(bus.state).toBe('closed');
    const warning = logger.lines.find(line => line.includes('bus-shutdown-connect-timeout'));
    expect(warning).toContain('2 waiting post(s) are rejected');
    // Ended by close(), not a connect failure to report as an error.
    expect(logger.lines.some(line => line.includes('bus-connect-failed'))).toBe(false);
  }, 30_000);

  it('a worker whose test process is gone (stdin closed) exits even while its broker never comes up', async () => {
    const worker = spawnWorker({
      socketPath: path.join(dir, 'orphan.sock'),
      workerId: 1,
      workerCount: 2,
    });
    await worker.waitForLine('status connecting worker', 30_000);
    worker.child.stdin?.end();
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  }, 30_000);
});
