import path from 'node:path';
import { IpcBroker } from '../../../../lib/transports/ipc/ipc.broker.js';
import { IpcClient } from '../../../../lib/transports/ipc/ipc.client.js';
import { FrameType } from '../../../../lib/transports/ipc/ipc.constants.js';
import { silentLogger } from '../../../../lib/index.js';
import { Raw } from '../../../fixtures/ipc/raw-client.js';
import { killAllChildren, spawnNode } from '../../../helpers/processes.js';
import { tempDir } from '../../../helpers/temp-dir.js';
import { waitFor } from '../../../helpers/wait-for.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';

// Issue 21 point 5 with a raw socket client: who may hold a worker id, dedup
// per session, the handshake deadline, and connect bursts.
const root = tempDir('herald-id-');
let n = 0;
const fresh = (): string => path.join(root, `i${n++}.sock`);

describe('ipc broker: identity and hygiene', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  afterAll(() => killAllChildren());

  async function broker(options: { handshakeTimeoutMs?: number } = {}) {
    const logger = memoryLogger();
    const b = new IpcBroker({ socketPath: fresh(), workerCount: 2, ...options }, { logger });
    await b.listen();
    cleanup.push(() => b.close());
    return { b, logger };
  }

  async function raw(socketPath: string): Promise<Raw> {
    const client = await Raw.connect(socketPath);
    cleanup.push(async () => client.socket.destroy());
    return client;
  }

  it('refuses a HELLO for a worker id live in another session, logging both pids; the live worker keeps its id', async () => {
    const { b, logger } = await broker();
    const first = (await raw(b.socketPath)).hello(0, 'session-A', 1111);
    await waitFor(() => first.seqs(FrameType.Welcome).length === 1);
    const second = (await raw(b.socketPath)).hello(0, 'session-B', 2222);
    await second.closed;
    expect(second.refusal()).toMatch(/worker id 0 is in use by pid 1111/);
    expect(
      logger.lines.some(
        line =>
          line.startsWith('error ') &&
          line.includes('pid 2222') &&
          line.includes('pid 1111') &&
          line.includes('worker #0'),
      ),
    ).toBe(true);
    expect(b.stats().identityConflicts).toBe(1);
    // The first one was not displaced: it still posts and receives.
    first.event(1);
    await waitFor(() => first.seqs(FrameType.Deliver).includes(1));
    expect(b.stats().workersConnected).toBe(1);
  });

  it("keeps each session's dedup state: another session in between does not make a reconnecting worker's resends new", async () => {
    const { b } = await broker();
    const a = (await raw(b.socketPath)).hello(0, 'session-A');
    for (let seq = 1; seq <= 3; seq++) a.event(seq);
    await waitFor(() => a.seqs(FrameType.Ack).includes(3));
    a.socket.destroy();
    await a.closed;
    await waitFor(() => b.stats().workersConnected === 0);
    // Another process with the same id comes and goes.
    const other = (await raw(b.socketPath)).hello(0, 'session-B');
    other.event(1);
    await waitFor(() => other.seqs(FrameType.Ack).includes(1));
    other.socket.destroy();
    await other.closed;
    await waitFor(() => b.stats().workersConnected === 0);
    const posted = b.stats().posted;
    // The first process reconnects and resends what it had not seen acknowledged.
    const again = (await raw(b.socketPath)).hello(0, 'session-A');
    await waitFor(() => again.seqs(FrameType.Welcome).length === 1);
    for (let seq = 1; seq <= 3; seq++) again.event(seq);
    await waitFor(() => b.stats().duplicates === 3);
    expect(b.stats().posted).toBe(posted);
  });

  it('closes a connection that sends no HELLO within handshakeTimeoutMs, counted and logged; others are served', async () => {
    const { b, logger } = await broker({ handshakeTimeoutMs: 100 });
    const idle = await raw(b.socketPath);
    const healthy = (await raw(b.socketPath)).hello(1);
    await idle.closed;
    expect(b.stats().handshakeTimeouts).toBe(1);
    expect(logger.lines.some(line => line.includes('sent no HELLO within 100 ms'))).toBe(true);
    healthy.event(1);
    await waitFor(() => healthy.seqs(FrameType.Ack).includes(1));
    expect(b.stats().handshakeTimeouts).toBe(1);
  });

  it('at close, drains what connected workers hold (bounded); what has no copy elsewhere is counted and logged with source/event/id', async () => {
    const { b, logger } = await broker();
    const stuck = (await raw(b.socketPath)).hello(1);
    await waitFor(() => stuck.seqs(FrameType.Welcome).length === 1);
    const ids = [0, 1, 2].map(i => b.post('shut', `e${i}`, i));
    await waitFor(() => stuck.seqs(FrameType.Deliver).length === 3);
    // Worker 1 never acknowledges: the drain gives up after its bound. Worker 0 never came: its queue is lost too.
    await b.close({ drainTimeoutMs: 100 });
    expect(b.stats().undeliverableAtClose).toBe(6);
    expect(
      logger.lines.some(
        line => line.startsWith('error ') && line.includes(`shut/e0 (id ${ids[0]}`),
      ),
    ).toBe(true);
    expect(logger.lines.some(line => line.includes('and 5 more like it'))).toBe(true);
    expect(logger.lines.some(line => line.includes('6 queued event deliveries lost'))).toBe(true);
  });

  // 10,000 connects took 149 s at load average 10 on 2 cores: the limit guards a hang, it is not a bound.
  it('a burst of 10,000 connects ends with every client connected (EAGAIN/ECONNREFUSED retried with jittered back-off)', async () => {
    const COUNT = Number(process.env.IPC_BURST ?? 10_000);
    const socketPath = fresh();
    const brokerProcess = spawnNode('test/fixtures/ipc/burst-broker.ts', {
      args: [socketPath, String(COUNT)],
    });
    await brokerProcess.waitForLine('listening', 60_000);
    const clients = Array.from(
      { length: COUNT },
      (_, workerId) =>
        new IpcClient({
          socketPath,
          workerId,
          window: 16,
          postTimeoutMs: 5000,
          maxFrameBytes: 1 << 20,
          maxQueueLength: 16,
          logger: silentLogger,
          deliver: delivery => delivery.settle({ outcome: 'ack' }),
          status: () => undefined,
        }),
    );
    cleanup.push(() => Promise.all(clients.map(client => client.close(0))));
    await Promise.all(clients.map(client => client.connect()));
    expect(clients.every(client => client.isConnected)).toBe(true);
    const connected = async (): Promise<number> => {
      const before = brokerProcess.count(/^connected /);
      brokerProcess.send('count');
      await waitFor(() => brokerProcess.count(/^connected /) > before);
      return Number(
        brokerProcess.lines
          .filter(l => l.startsWith('connected '))
          .pop()!
          .slice(10),
      );
    };
    expect(await connected()).toBe(COUNT);
  }, 300_000);
});
