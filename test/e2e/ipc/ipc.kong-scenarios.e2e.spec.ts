import path from 'node:path';
import { IpcBroker } from '../../../lib/transports/ipc/ipc.broker.js';
import { killAllChildren, spawnNode, type ChildHandle } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait-for.js';
import { command, memoryLogger, received, socketDir, spawnWorker } from './ipc-helpers.js';

// lua-resty-events' Test::Nginx scenarios (t/*.t), rewritten from their
// behaviour as our own tests with real processes. The README's ipc section
// lists each one and what differs on purpose. privileged.t is
// ipc.privileged.e2e.spec.ts; events.t TEST 5 (wrong params) is
// test/unit/transports/ipc/ipc.options.spec.ts.
const dir = socketDir();
let n = 0;
const brokers: IpcBroker[] = [];

afterEach(async () => {
  await killAllChildren();
  await Promise.all(brokers.splice(0).map(b => b.close()));
});

async function broker(workerCount: number, maxPayloadBytes?: number): Promise<IpcBroker> {
  const b = new IpcBroker(
    { socketPath: path.join(dir, `k${n++}.sock`), workerCount, maxPayloadBytes },
    { logger: memoryLogger() },
  );
  await b.listen();
  brokers.push(b);
  return b;
}

async function workers(b: IpcBroker, count: number, extra = {}): Promise<ChildHandle[]> {
  const started = [...Array(count).keys()].map(workerId =>
    spawnWorker({ socketPath: b.socketPath, workerId, workerCount: count, ...extra }),
  );
  await Promise.all(started.map((child, id) => child.waitForLine(`ready ${id}`, 60_000)));
  return started;
}

describe("ipc e2e: lua-resty-events' scenarios", () => {
  it('events.t / broadcast.t: a post reaches every worker, postLocal only its own, a unique event runs once', async () => {
    const ws = await workers(await broker(3), 3);
    command(ws[1], { cmd: 'post', source: 'ev', event: 'all', data: 'broadcast' });
    command(ws[1], { cmd: 'postLocal', source: 'ev', event: 'local', data: 'mine' });
    command(ws[2], { cmd: 'post', source: 'ev', event: 'one', data: 'once', unique: 'only-one' });
    command(ws[0], { cmd: 'post', source: 'ev', event: 'one', data: 'once', unique: 'only-one' });
    await waitFor(() => ws.every(w => received(w, 'ev').some(l => l.startsWith('ev/all'))));
    await Promise.all([ws[2], ws[0]].map(w => w.waitForLine(/^posted 1 0/)));
    await waitFor(
      () => ws.flatMap(w => received(w, 'ev').filter(l => l.startsWith('ev/one '))).length === 1,
    );
    for (const w of ws)
      expect(received(w, 'ev').filter(l => l.startsWith('ev/all '))).toEqual([
        'ev/all "broadcast" remote',
      ]);
    expect(received(ws[1], 'ev').filter(l => l.startsWith('ev/local '))).toEqual([
      'ev/local "mine" local',
    ]);
    expect(received(ws[0], 'ev').filter(l => l.startsWith('ev/local '))).toEqual([]);
  }, 120_000);

  it('events.t TEST 6/7: a payload over the limit fails with PayloadTooLargeError; a larger limit takes it', async () => {
    const [small] = await workers(await broker(1), 1);
    command(small, { cmd: 'post', source: 'big', event: 'x', data: 'y'.repeat(70_000) });
    await small.waitForLine(/^posted 0 1 PayloadTooLargeError/);
    await killAllChildren();
    const [large] = await workers(await broker(1, 100_000), 1, { maxPayloadBytes: 100_000 });
    command(large, { cmd: 'post', source: 'big', event: 'x', data: 'y'.repeat(70_000) });
    await large.waitForLine(/^posted 1 0/);
    await waitFor(() => received(large, 'big').length === 1);
  }, 120_000);

  it('codec.t: a number, a string and a boolean arrive with their types', async () => {
    const ws = await workers(await broker(2), 2);
    command(ws[0], {
      cmd: 'post',
      source: 'codec',
      event: 'obj',
      data: { n: 100, s: 'xxx', b: true },
    });
    await waitFor(() => received(ws[1], 'codec').length === 1);
    expect(received(ws[1], 'codec')).toEqual(['codec/obj {"n":100,"s":"xxx","b":true} remote']);
  }, 60_000);

  it('callback.t: handlers at every level, removed level by level; a throwing handler is logged and the others run', async () => {
    const child = spawnNode('test/fixtures/ipc/callbacks.ts', { env: { SOCKET_DIR: dir } });
    await child.waitForLine(/^done /, 60_000);
    const calls = child.lines.filter(l => l.startsWith('handler '));
    expect(calls).toEqual([
      ...['request1', 'request2', 'request3'].flatMap(e => [
        `handler global ${e} 123`,
        `handler source ${e} 123`,
        `handler ${e === 'request3' ? 'event3' : 'event12'} ${e} 123`,
      ]),
      ...['request1', 'request2', 'request3'].flatMap(e => [
        `handler source ${e} 124`,
        `handler ${e === 'request3' ? 'event3' : 'event12'} ${e} 124`,
      ]),
      'handler event12 request1 125',
      'handler event12 request2 125',
      'handler event3 request3 125',
      'handler event3 request3 126',
    ]);
    expect(child.count(/^error .*callback failed on purpose/)).toBe(1);
  }, 60_000);

  it('retain-events.t: an event posted while the broker cannot be reached is delivered once it can', async () => {
    const socketPath = path.join(dir, `retain${n++}.sock`);
    const early = spawnWorker({ socketPath, workerId: 0, workerCount: 2, postTimeoutMs: 60_000 });
    await early.waitForLine('status connecting', 60_000);
    command(early, { cmd: 'post', source: 'retain', event: 'e', data: 'eventdata#2' });
    const b = new IpcBroker({ socketPath, workerCount: 2 }, { logger: memoryLogger() });
    await b.listen();
    brokers.push(b);
    const [, other] = await Promise.all([
      early.waitForLine('ready 0', 60_000),
      spawnWorker({ socketPath, workerId: 1, workerCount: 2 }),
    ]);
    await early.waitForLine(/^posted 1 0/, 60_000);
    await waitFor(() => [early, other].every(w => received(w, 'retain').length === 1));
  }, 120_000);

  it('slow-client-on-startup.t: a worker that starts late still gets what was posted before it connected', async () => {
    const b = await broker(3);
    const ready = [0, 2].map(workerId =>
      spawnWorker({ socketPath: b.socketPath, workerId, workerCount: 3 }),
    );
    await Promise.all(ready.map((w, i) => w.waitForLine(`ready ${i * 2}`, 60_000)));
    command(ready[0], { cmd: 'post', source: 'content', event: 'first' });
    await ready[0].waitForLine(/^posted 1 0/);
    const slow = spawnWorker({ socketPath: b.socketPath, workerId: 1, workerCount: 3 });
    await waitFor(() => [...ready, slow].every(w => received(w, 'content').length === 1), {
      timeoutMs: 60_000,
    });
  }, 120_000);

  it('deadlock.t: the broker is SIGKILLed while handlers still run; after the failover no process runs the event twice', async () => {
    const socketPath = path.join(dir, `dl${n++}.sock`);
    const spec = { socketPath, workerCount: 3, failover: true, slowMs: 1000 };
    const host = spawnWorker({ ...spec, workerId: 0 });
    await host.waitForLine('status connected broker', 60_000);
    const others = [1, 2].map(workerId => spawnWorker({ ...spec, workerId }));
    await Promise.all(others.map((w, i) => w.waitForLine(`ready ${i + 1}`, 60_000)));
    command(host, { cmd: 'post', source: 'dl', event: 'first', data: 'x' });
    await waitFor(() => others.every(w => w.lines.length > 0));
    await host.waitForLine(/^posted 1 0/, 30_000);
    const marks = others.map(w => w.lines.length);
    await host.kill('SIGKILL');
    await waitFor(
      () => others.some((w, i) => w.lines.slice(marks[i]).includes('status connected broker')),
      { timeoutMs: 30_000 },
    );
    // A later event marks that each survivor is through the failover and its resends.
    others.forEach(w => command(w, { cmd: 'post', source: 'dl', event: 'after', data: 'y' }));
    await waitFor(
      () =>
        others.every(w => received(w, 'dl').filter(l => l.startsWith('dl/after ')).length === 2),
      {
        timeoutMs: 30_000,
      },
    );
    for (const w of others)
      expect(received(w, 'dl').filter(l => l.startsWith('dl/first '))).toEqual([
        'dl/first "x" remote',
      ]);
  }, 120_000);
});
