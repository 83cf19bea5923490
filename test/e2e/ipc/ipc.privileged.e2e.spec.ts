import path from 'node:path';
import { killAllChildren, spawnNode } from '../../helpers/processes.js';
import { socketDir } from './ipc-helpers.js';

// Issue 22 point 2: the node:cluster primary as lua-resty-events' privileged agent.
afterAll(() => killAllChildren());

describe('ipc e2e: privileged agent (the node:cluster primary)', () => {
  it('receives every broadcast of the workers and its own, in order, after registering late (its retained queue); never a unique event', async () => {
    const child = spawnNode('test/fixtures/ipc/cluster-privileged.ts', {
      env: { HERALD_IPC_SOCKET: path.join(socketDir(), 'priv.sock') },
    });
    const line = await child.waitForLine(/^result /, 60_000);
    const { got, stats } = JSON.parse(line.slice(7)) as {
      got: string[];
      stats: Record<string, number>;
    };
    for (const worker of ['w0', 'w1']) {
      expect(got.filter(e => e.startsWith(`${worker}/`))).toEqual(
        [0, 1, 2, 3, 4].map(i => `${worker}/tick ${i}`),
      );
    }
    expect(got).toContain('primary/own "from-the-primary"');
    expect(got.some(e => e.startsWith('u/'))).toBe(false);
    expect(stats).toMatchObject({ privilegedReceived: 11, privilegedDropped: 0 });
    expect((await child.exited).code).toBe(0);
  }, 90_000);
});
