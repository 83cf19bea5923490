import path from 'node:path';
import { killAllChildren, spawnNode } from '../../helpers/processes.js';
import { socketDir } from './ipc-helpers.js';

afterAll(() => killAllChildren());

describe('ipc e2e: startBroker + forkWorkers under node:cluster (sample/cluster, npm start)', () => {
  it('broadcasts to 4 Nest workers, runs the unique reload once, prints a summary and exits 0', async () => {
    const child = spawnNode('sample/cluster/main.ts', {
      env: {
        HERALD_IPC_SOCKET: path.join(socketDir(), 'cluster.sock'),
        NO_COLOR: '1',
        FORCE_COLOR: '0',
      },
    });
    const { code } = await child.exited;
    const output = child.lines.join('\n');
    expect(code).toBe(0);
    const downPids = new Set(
      child.lines
        .filter(l => l.includes('upstream db-primary:5432 is down'))
        .map(l => /pid (\d+)\]/.exec(l)?.[1]),
    );
    expect(downPids.size).toBe(4);
    expect(child.count('reloading the product cache')).toBe(1);
    expect(child.count('all 4 workers connected; health check')).toBe(1);
    expect(output).toContain('health/upstream-down reached 4/4 workers');
    expect(output).toMatch(
      /reloaded by 1 \(worker #\d, pid \d+\); 3 repeats dropped by the broker/,
    );
    expect(output).toContain('all workers stopped; bye');
  });

  it('forks a SIGKILLed worker again with the same id, and it gets what was queued for that id', async () => {
    const child = spawnNode('test/fixtures/ipc/cluster-respawn.ts', {
      env: { HERALD_IPC_SOCKET: path.join(socketDir(), 'respawn.sock') },
    });
    const line = await child.waitForLine(/^result /, 30_000);
    const result = JSON.parse(line.slice('result '.length)) as {
      pids: Record<string, number[]>;
      respawned: number[];
    };
    expect(result.pids['1']).toHaveLength(2);
    expect(result.pids['1'][0]).not.toBe(result.pids['1'][1]);
    expect(result.respawned).toEqual([0, 1, 2]);
    expect((await child.exited).code).toBe(0);
  });
});
