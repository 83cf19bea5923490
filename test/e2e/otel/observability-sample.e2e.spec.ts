import { killAllChildren, spawnNode } from '../../helpers/processes.js';

afterAll(() => killAllChildren());

describe('sample/observability: the cluster sample with /health and /metrics', () => {
  it('each worker answers /health 200 and its /metrics counts the events it handled', async () => {
    // PORT=0: each worker binds a port the system picks; a free PORT with PORT + 1
    // taken (both lie in the ephemeral range) failed with EADDRINUSE.
    const child = spawnNode('sample/observability/main.ts', {
      args: ['--once'],
      env: { PORT: '0' },
    });
    for (const worker of [0, 1]) {
      await child.waitForLine(`worker ${worker}: /health 200`, 60_000);
      const handled = await child.waitForLine(
        new RegExp(
          `^worker ${worker}: herald_events_handled_total\\{transport="ipc",source="orders",event="created"`,
        ),
      );
      expect(Number(handled.split(' ').at(-1))).toBeGreaterThanOrEqual(20);
      await child.waitForLine(
        new RegExp(
          `^worker ${worker}: herald_handler_duration_count\\{.*handler="OrdersListener.onCreated"`,
        ),
      );
    }
    await child.waitForLine(/^worker 0: herald_events_posted_total/);
    expect(await child.exited).toEqual({ code: 0, signal: null });
  }, 90_000);
});
