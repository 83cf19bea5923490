import path from 'node:path';
import { killAllChildren, spawnNode } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait-for.js';
import { command, received, socketDir, startWorker } from './ipc-helpers.js';

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
});
