import { chmodSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import {
  EventBus,
  silentLogger,
  type HeraldLogger,
  type TransportStatus,
} from '../../../../lib/index.js';
import { IpcBroker } from '../../../../lib/transports/ipc/ipc.broker.js';
import { FrameType, MAX_UNANSWERED_POSTS } from '../../../../lib/transports/ipc/ipc.constants.js';
import { IpcTransport } from '../../../../lib/transports/ipc/ipc.transport.js';
import { Raw } from '../../../fixtures/ipc/raw-client.js';
import { waitFor } from '../../../helpers/wait-for.js';
import { tempDir } from '../../../helpers/temp-dir.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';

const root = tempDir('herald-hard-');
let n = 0;
const fresh = (): string => path.join(root, `s${n++}.sock`);

describe('ipc hardening', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function broker(socketPath = fresh(), workerCount = 2) {
    const logger = memoryLogger();
    const b = new IpcBroker({ socketPath, workerCount }, { logger });
    await b.listen();
    cleanup.push(() => b.close());
    return { b, logger };
  }

  async function bus(transport: IpcTransport, logger: HeraldLogger = silentLogger) {
    const got: string[] = [];
    const statuses: TransportStatus[] = [];
    transport.status$.subscribe(status => statuses.push(status));
    const b = new EventBus({ logger, transport });
    b.register(data => void got.push(String(data)));
    await b.connect();
    b.start();
    cleanup.push(() => b.close({ timeoutMs: 1000 }));
    return { bus: b, got, statuses };
  }

  it('cuts off a client whose connections keep sending refused frames; healthy workers go on', async () => {
    const { b, logger } = await broker();
    const healthy = await bus(
      new IpcTransport({
        socketPath: b.socketPath,
        workerId: 0,
        workerCount: 2,
        hostBroker: false,
      }),
    );
    for (let i = 0; i < 5; i++) {
      const raw = (await Raw.connect(b.socketPath)).hello(1);
      raw.socket.write(Buffer.from([0, 0, 0, 1, 42]));
      await raw.closed;
      expect(raw.refusal()).toMatch(/unexpected frame type 42/);
    }
    const again = (await Raw.connect(b.socketPath)).hello(1);
    await again.closed;
    expect(again.refusal()).toMatch(/worker #1 \(session raw-1\) is cut off/);
    expect(again.seqs(FrameType.Welcome)).toEqual([]);
    expect(b.stats().cutOff).toBe(1);
    expect(
      logger.lines.some(l =>
        /error ipc worker-cut-off: worker #1 \(pid \d+\) \(session raw-1\) sent 5 refused frames/.test(
          l,
        ),
      ),
    ).toBe(true);
    // A new process with that worker id (another session) is served.
    const restarted = (await Raw.connect(b.socketPath)).hello(1, 'raw-1-restarted');
    await waitFor(() => restarted.seqs(FrameType.Welcome).length === 1);
    restarted.socket.destroy();
    await healthy.bus.post('s', 'e', 'still-served');
    await waitFor(() => healthy.got.includes('still-served'));
  });

  it('tells a poster DELIVERED only once every worker seen let go of its event', async () => {
    const { b } = await broker();
    const poster = (await Raw.connect(b.socketPath)).hello(0);
    const other = (await Raw.connect(b.socketPath)).hello(1);
    await waitFor(
      () => poster.seqs(FrameType.Welcome).length && other.seqs(FrameType.Welcome).length,
    );
    poster.event(1);
    await waitFor(() => poster.seqs(FrameType.Ack).includes(1));
    await waitFor(() => other.seqs(FrameType.Deliver).includes(1));
    expect(b.stats().undeliveredHighWater).toBe(1);
    poster.ack(1);
    // Still in worker 1's queue: not delivered everywhere yet.
    await waitFor(() => b.stats().queued === 1);
    expect(poster.seqs(FrameType.Delivered)).toEqual([]);
    other.ack(1);
    await waitFor(() => poster.seqs(FrameType.Delivered).includes(1));
    expect(other.seqs(FrameType.Delivered)).toEqual([]);
  });

  it('bounds the posts waiting behind a full window: beyond the bound a post fails at once, counted', async () => {
    const socketPath = fresh();
    const first = new IpcBroker(
      { socketPath, workerCount: 1, maxQueueLength: 2 },
      { logger: silentLogger },
    );
    await first.listen();
    const transport = new IpcTransport({
      socketPath,
      maxQueueLength: 2,
      postTimeoutMs: 200,
      hostBroker: false,
    });
    const { bus: b } = await bus(transport);
    await first.close();
    await waitFor(() => transport.stats().reconnects === 1);
    // At most MAX_UNANSWERED_POSTS may be unanswered (4 encoded, the rest waiting); the rest of a batch fails.
    const post = (count: number) =>
      Promise.allSettled(Array.from({ length: count }, (_, i) => b.post('s', 'e', i)));
    const turn = () => new Promise(resolve => setImmediate(resolve));
    const firstBatch = post(10_000);
    await turn();
    const secondBatch = post(10_000);
    await turn();
    // Nothing fits now: a later batch fails at once.
    const next = await post(5);
    expect(next.map(r => r.status === 'rejected' && (r.reason as Error).name)).toEqual(
      Array.from({ length: 5 }, () => 'QueueFullError'),
    );
    expect(transport.stats().pendingHighWater).toBe(4);
    expect(transport.stats().waitingHighWater).toBe(MAX_UNANSWERED_POSTS - 4);
    expect(transport.stats().inFlight).toBe(MAX_UNANSWERED_POSTS);
    await b.close({ timeoutMs: 1000 });
    // The rest fail when the bus closes with no broker to take them.
    const names = [...(await firstBatch), ...(await secondBatch)].map(
      r => r.status === 'rejected' && (r.reason as Error).name,
    );
    expect(names.filter(name => name === 'QueueFullError')).toHaveLength(
      20_000 - MAX_UNANSWERED_POSTS,
    );
    expect(names.filter(name => name === 'TransportClosedError')).toHaveLength(
      MAX_UNANSWERED_POSTS,
    );
  });

  it('close waits for what was posted while the broker was away, then delivers it through the next broker', async () => {
    const socketPath = fresh();
    const first = new IpcBroker({ socketPath, workerCount: 2 }, { logger: silentLogger });
    await first.listen();
    const transport = new IpcTransport({ socketPath, workerCount: 2, hostBroker: false });
    const poster = new EventBus({ logger: silentLogger, transport });
    await poster.connect();
    poster.start();
    await first.close();
    await waitFor(() => transport.stats().reconnects === 1);
    const posted = poster.post('s', 'e', 'flushed');
    await waitFor(() => transport.stats().published === 1);
    // The transport's own close (the bus would also wait for its publishes first).
    const closed = transport.close();
    await broker(socketPath);
    const receiver = await bus(
      new IpcTransport({ socketPath, workerId: 1, workerCount: 2, hostBroker: false }),
    );
    await expect(posted).resolves.not.toThrow();
    await closed;
    await waitFor(() => receiver.got.includes('flushed'));
    await poster.close({ timeoutMs: 1000 });
  });

  it('a process taking over re-checks the socket directory: refused while unsafe, broker once fixed', async () => {
    const dir = mkdtempSync(path.join(root, 'd'));
    const socketPath = path.join(dir, 'f.sock');
    const first = new IpcTransport({ socketPath, workerId: 0, workerCount: 2, failover: true });
    const a = new EventBus({ logger: silentLogger, transport: first });
    await a.connect();
    expect(first.isBroker).toBe(true);
    const logger = memoryLogger();
    const second = new IpcTransport({ socketPath, workerId: 1, workerCount: 2, failover: true });
    const b = await bus(second, logger);
    await waitFor(() => b.statuses.some(s => s.state === 'connected' && s.role === 'worker'));
    chmodSync(dir, 0o777);
    await a.close({ timeoutMs: 1000 });
    await waitFor(() =>
      logger.lines.some(l =>
        /cannot take over as the broker: socket directory .* has mode 0777/.test(l),
      ),
    );
    expect(second.isBroker).toBe(false);
    chmodSync(dir, 0o700);
    await waitFor(() => b.statuses.some(s => s.state === 'connected' && s.role === 'broker'), {
      timeoutMs: 20_000,
    });
    expect(second.isBroker).toBe(true);
    expect(second.stats().elections).toBe(1);
    await b.bus.post('s', 'e', 'after');
    await waitFor(() => b.got.includes('after'));
  });
});
