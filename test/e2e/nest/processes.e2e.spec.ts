import { killAllChildren, spawnNode } from '../../helpers/processes.js';

afterAll(() => killAllChildren());

describe('real processes (e2e)', () => {
  it('npm start: sample/basic runs every feature and exits 0 by itself', async () => {
    const child = spawnNode('sample/basic/main.ts');
    const { code } = await child.exited;
    const out = child.lines.join('\n');
    expect(code).toBe(0);
    expect(out).toContain('OrdersController.onCreated handled orders/created');
    expect(out).toContain('nightly report ran 1x; postLocal kept the very Map: true');
    expect(out).toContain('audit: orders/paid {"orderId":1}');
    expect(out).toContain('after close: TransportClosedError');
  });

  it('with enableShutdownHooks(), SIGTERM lets a running handler finish before providers are destroyed', async () => {
    const child = spawnNode('test/e2e/nest/fixtures/shutdown-app.ts');
    await child.waitForLine('handler started');
    child.child.kill('SIGTERM');
    await child.waitForLine('closing');
    child.send('release');
    const { signal } = await child.exited;
    expect(signal).toBe('SIGTERM');
    const finished = child.lines.indexOf('handler finished db=open');
    expect(finished).toBeGreaterThanOrEqual(0);
    expect(child.lines.indexOf('db closed')).toBeGreaterThan(finished);
  });
});
