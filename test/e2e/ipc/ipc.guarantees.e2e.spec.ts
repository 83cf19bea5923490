import path from 'node:path';
import { killAllChildren, type ChildHandle } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait-for.js';
import { command, received, socketDir, startWorker, type WorkerSpec } from './ipc-helpers.js';

// Issue 21: at-least-once for every acknowledged post, the broker process's
// own included, effectively once per process across failovers. Independent
// processes electing their broker (as under pm2), killed for real.
const dir = socketDir();
/** Broker kills of the load test; IPC_KILLS=30 runs the campaign of issue 21 (minutes). */
const KILLS = Number(process.env.IPC_KILLS ?? 4);

afterAll(() => killAllChildren());

/** A process's output lines with the time the test saw each (to order lines of different processes). */
class Timeline {
  readonly entries: { at: number; line: string }[] = [];
  private buffered = '';

  constructor(readonly child: ChildHandle) {
    child.child.stdout?.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString('utf8');
      const parts = this.buffered.split('\n');
      this.buffered = parts.pop() ?? '';
      const at = Date.now();
      for (const line of parts) this.entries.push({ at, line });
    });
  }

  /** When the first line matching `prefix` was seen. */
  firstAt(prefix: string): number | undefined {
    return this.entries.find(entry => entry.line.startsWith(prefix))?.at;
  }
}

async function start(spec: WorkerSpec): Promise<ChildHandle> {
  const child = await startWorker(spec, false);
  await child.waitForLine(`ready ${spec.workerId}`, 60_000);
  return child;
}

const isBroker = (child: ChildHandle, after = 0): boolean =>
  child.lines.slice(after).includes('status connected broker');

describe('ipc e2e: at-least-once for every acknowledged post, the broker process included', () => {
  it("a post of the broker's process resolves, the broker is SIGKILLed before a SIGSTOPped worker got it: after the failover and SIGCONT that worker gets it, once", async () => {
    const socketPath = path.join(dir, 'own.sock');
    // Big events: the stopped worker's socket buffer fills, so what follows stays in the broker's memory.
    const spec = { socketPath, workerCount: 3, failover: true, maxPayloadBytes: 262_144 };
    const host = await start({ ...spec, workerId: 0 });
    expect(isBroker(host)).toBe(true);
    const [stopped, witness] = await Promise.all([
      start({ ...spec, workerId: 1 }),
      start({ ...spec, workerId: 2 }),
    ]);
    await waitFor(() => [stopped, witness].every(c => c.lines.includes('status connected worker')));
    stopped.child.kill('SIGSTOP');
    try {
      command(host, {
        cmd: 'post',
        source: 'fill',
        event: 'big',
        data: 'x'.repeat(131_072),
        count: 10,
      });
      await host.waitForLine('posted 10 0', 30_000);
      command(host, { cmd: 'post', source: 'own', event: 'target', data: 'the-one' });
      await host.waitForLine('posted 1 0', 30_000);
      await host.kill('SIGKILL');
    } finally {
      stopped.child.kill('SIGCONT');
    }
    const target = 'own/target "the-one" remote';
    await waitFor(() => received(stopped, 'own').includes(target), {
      timeoutMs: 30_000,
      message: 'the resumed worker to receive the post the dead broker process had resolved',
    });
    await waitFor(() => received(witness, 'own').includes(target));
    // The witness resent it and also handled it: each process ran it once.
    await waitFor(() => [stopped, witness].some(c => isBroker(c)));
    for (const child of [stopped, witness]) {
      expect(received(child, 'own').filter(line => line === target)).toHaveLength(1);
      expect(received(child, 'fill')).toHaveLength(10);
    }
  }, 120_000);

  it(
    'broker kills under load (every process posting, the broker included): every resolved post reaches every process connected from its resolution on, once',
    async () => {
      const socketPath = path.join(dir, 'load.sock');
      const spec = { socketPath, workerCount: 4, failover: true };
      const procs: { child: ChildHandle; timeline: Timeline; id: number }[] = [];
      const launch = async (id: number): Promise<void> => {
        const child = await startWorker({ ...spec, workerId: id }, false);
        const timeline = new Timeline(child);
        await child.waitForLine(`ready ${id}`, 60_000);
        procs.push({ child, timeline, id });
        command(child, { cmd: 'stream', source: 'ld', data: `p${procs.length}-` });
      };
      for (let id = 0; id < 4; id++) await launch(id);
      const live = () =>
        procs.filter(p => p.child.child.exitCode === null && !p.child.child.signalCode);
      const okCount = (): number => procs.reduce((sum, p) => sum + p.child.count(/^ok /), 0);
      let broker = procs[0];
      expect(isBroker(broker.child)).toBe(true);
      for (let kill = 0; kill < KILLS; kill++) {
        const before = okCount();
        await waitFor(() => okCount() >= before + 40, {
          timeoutMs: 30_000,
          message: 'posts resolving',
        });
        const marks = new Map(live().map(p => [p, p.child.lines.length]));
        const victim = broker;
        await victim.child.kill('SIGKILL');
        broker = await waitFor(
          () => [...marks].find(([p, mark]) => p !== victim && isBroker(p.child, mark))?.[0],
          { timeoutMs: 30_000, message: `a broker elected after kill ${kill + 1}` },
        );
        await launch(victim.id);
      }
      const before = okCount();
      await waitFor(() => okCount() >= before + 40, { timeoutMs: 30_000 });
      const survivors = live();
      survivors.forEach(p => command(p.child, { cmd: 'stop' }));
      await Promise.all(survivors.map(p => p.child.waitForLine('stopped')));
      // Every post resolved after a survivor was ready reached it, whoever posted it (dead brokers included).
      for (const s of survivors) {
        const readyAt = s.timeline.firstAt(`ready ${s.id}`)!;
        const expected = procs.flatMap(p =>
          p.timeline.entries
            .filter(e => e.line.startsWith('ok ') && e.at > readyAt)
            .map(e => `ld/tick ${JSON.stringify(e.line.slice(3))}`),
        );
        expect(expected.length).toBeGreaterThan(0);
        await waitFor(
          () => {
            const got = new Set(
              received(s.child, 'ld').map(line => line.replace(/ (local|remote)$/, '')),
            );
            return expected.every(event => got.has(event));
          },
          {
            timeoutMs: 30_000,
            message: `process ${s.id} to receive the ${expected.length} posts resolved since it was ready`,
          },
        );
        // Effectively once: no event ran twice in one process.
        const got = received(s.child, 'ld').map(line => line.replace(/ (local|remote)$/, ''));
        expect(got.length - new Set(got).size).toBe(0);
      }
    },
    60_000 + KILLS * 40_000,
  );
});
