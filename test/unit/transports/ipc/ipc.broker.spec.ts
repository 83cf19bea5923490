import net from 'node:net';
import path from 'node:path';
import { EventBus, silentLogger } from '../../../../lib/index.js';
import { IpcBroker } from '../../../../lib/transports/ipc/ipc.broker.js';
import { encodeEventBody } from '../../../../lib/transports/ipc/ipc.codec.js';
import {
  FrameType,
  IPC_MAGIC,
  IPC_PROTOCOL_VERSION,
} from '../../../../lib/transports/ipc/ipc.constants.js';
import { IpcFrameRefusedError } from '../../../../lib/transports/ipc/ipc.errors.js';
import { BodyReader, FrameReader, FrameWriter } from '../../../../lib/transports/ipc/ipc.frame.js';
import { IpcTransport } from '../../../../lib/transports/ipc/ipc.transport.js';
import { waitFor } from '../../../helpers/wait-for.js';
import { tempDir } from '../../../helpers/temp-dir.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';

const dir = tempDir('herald-broker-');
let n = 0;

/** A hand-driven protocol client: writes frames, records the frames it gets back. */
class RawClient {
  readonly frames: { type: number; body: Buffer }[] = [];
  readonly closed: Promise<void>;
  private readonly reader = new FrameReader(1 << 24);

  constructor(readonly socket: net.Socket) {
    socket.on('data', chunk => {
      this.reader.push(chunk);
      while (this.reader.next()) {
        this.frames.push({
          type: this.reader.type,
          body: Buffer.from(this.reader.buf.subarray(this.reader.start, this.reader.end)),
        });
        this.reader.consume();
      }
    });
    socket.on('error', () => undefined);
    this.closed = new Promise(resolve => socket.once('close', () => resolve()));
  }

  static async connect(socketPath: string): Promise<RawClient> {
    const socket = net.connect(socketPath);
    await new Promise<void>((resolve, reject) =>
      socket.once('connect', resolve).once('error', reject),
    );
    return new RawClient(socket);
  }

  hello(
    fields: {
      workerId?: number;
      session?: string;
      version?: number;
      magic?: number;
      lastReceived?: number;
      ackedSeq?: number;
      window?: number;
      postTimeoutMs?: number;
    } = {},
  ): void {
    const w = new FrameWriter();
    w.begin(FrameType.Hello);
    w.u32(fields.magic ?? IPC_MAGIC);
    w.u8(fields.version ?? IPC_PROTOCOL_VERSION);
    w.i32(fields.workerId ?? 0);
    w.u32(process.pid);
    w.u48(fields.lastReceived ?? 0);
    w.u48(fields.ackedSeq ?? 0);
    w.u32(fields.window ?? 100);
    w.u32(fields.postTimeoutMs ?? 1000);
    w.str(fields.session ?? 'raw-session');
    w.end();
    this.socket.write(w.take());
  }

  event(seq: number, source = 'raw', payload = '"x"', unique?: string): void {
    const w = new FrameWriter();
    w.begin(FrameType.Event);
    w.u48(seq);
    encodeEventBody(w, {
      id: `id-${seq}`,
      source,
      event: 'e',
      payload,
      origin: 'raw',
      occurredAt: 't',
      unique,
    });
    w.end();
    this.socket.write(w.take());
  }

  of(type: number): Buffer[] {
    return this.frames.filter(f => f.type === type).map(f => f.body);
  }

  refusal(): string | undefined {
    const body = this.of(FrameType.Refuse)[0];
    if (!body) return undefined;
    const r = new BodyReader().reset(body, 0, body.length);
    r.u48('seq');
    return r.str('reason');
  }
}

function welcomeLastSeqIn(body: Buffer): number {
  const r = new BodyReader().reset(body, 0, body.length);
  r.u8('version');
  return r.u48('lastSeqIn');
}

describe('ipc broker protocol', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function broker(
    options: { workerCount?: number; maxQueueLength?: number; maxPayloadBytes?: number } = {},
  ) {
    const logger = memoryLogger({ debug: true });
    const b = new IpcBroker(
      { socketPath: path.join(dir, `b${n++}.sock`), workerCount: 2, ...options },
      { logger },
    );
    await b.listen();
    cleanup.push(() => b.close());
    return { b, logger };
  }

  async function worker(
    socketPath: string,
    workerId: number,
    options: { maxPayloadBytes?: number; workerCount?: number } = {},
  ) {
    const got: string[] = [];
    const bus = new EventBus({
      logger: silentLogger,
      transport: new IpcTransport({
        socketPath,
        workerId,
        workerCount: 2,
        hostBroker: false,
        ...options,
      }),
    });
    bus.register((data, e) => void got.push(`${e.source}:${String(data)}`));
    await bus.connect();
    bus.start();
    cleanup.push(() => bus.close({ timeoutMs: 1000 }));
    return { bus, got };
  }

  it.each([
    [
      'another protocol version',
      (c: RawClient) => c.hello({ version: 99 }),
      /unsupported protocol version 99 \(this broker speaks 3\)/,
    ],
    [
      'a stranger (bad magic)',
      (c: RawClient) => c.hello({ magic: 0x12345678 }),
      /not a nest-herald client/,
    ],
    [
      'a worker id outside workerCount',
      (c: RawClient) => c.hello({ workerId: 7 }),
      /worker id 7 is outside 0\.\.1/,
    ],
    [
      'an event before the handshake',
      (c: RawClient) => c.event(1),
      /expected a HELLO frame first, got type 3/,
    ],
    [
      'an oversized first frame',
      (c: RawClient) => c.socket.write(Buffer.from([0, 1, 0, 0, 1])),
      /frame of 65536 bytes exceeds the limit of 1024 bytes/,
    ],
    [
      'an unknown frame type',
      (c: RawClient) => {
        c.hello();
        c.socket.write(Buffer.from([0, 0, 0, 1, 42]));
      },
      /unexpected frame type 42/,
    ],
    [
      'a malformed event body',
      (c: RawClient) => {
        c.hello();
        c.socket.write(Buffer.from([0, 0, 0, 9, FrameType.Event, 0, 0, 0, 0, 0, 1, 200, 0]));
      },
      /unknown event flags 200/,
    ],
    [
      'an ack of something never sent',
      (c: RawClient) => {
        c.hello();
        const w = new FrameWriter();
        w.begin(FrameType.Ack);
        w.u48(5);
        w.end();
        c.socket.write(w.take());
      },
      /ack of seq 5, beyond the last sent \(0\)/,
    ],
  ])(
    'refuses %s: logs why, closes that connection, keeps serving the others',
    async (_name, send, reason) => {
      const { b, logger } = await broker();
      const healthy = await worker(b.socketPath, 1);
      const raw = await RawClient.connect(b.socketPath);
      send(raw);
      await raw.closed;
      expect(raw.refusal()).toMatch(reason);
      expect(
        logger.lines.some(
          line => line.startsWith('warn ipc frame-refused: refused a frame') && reason.test(line),
        ),
      ).toBe(true);
      expect(b.stats().refusedFrames).toBe(1);
      await healthy.bus.post('still', 'ok', 1);
      await waitFor(() => healthy.got.includes('still:1'));
    },
  );

  it("fails start-up with the broker's reason when it refuses the handshake (no endless retry)", async () => {
    const { b } = await broker();
    const bus = new EventBus({
      logger: silentLogger,
      transport: new IpcTransport({
        socketPath: b.socketPath,
        workerId: 5,
        workerCount: 8,
        hostBroker: false,
      }),
    });
    await expect(bus.connect()).rejects.toThrow(
      /refused this worker: worker id 5 is outside 0\.\.1/,
    );
    await expect(bus.connect()).rejects.toThrow(IpcFrameRefusedError);
    await bus.close();
    expect(b.stats().refusedFrames).toBe(1);
  });

  it('drops a resent frame it already accepted (session + sequence), and acks cumulatively', async () => {
    const { b } = await broker();
    const receiver = await worker(b.socketPath, 1);
    const raw = await RawClient.connect(b.socketPath);
    raw.hello({ session: 'S1' });
    raw.event(1, 'one');
    raw.event(2, 'two');
    raw.event(1, 'one');
    await waitFor(
      () =>
        raw.of(FrameType.Ack).length > 0 && raw.of(FrameType.Ack).at(-1)!.readUIntBE(0, 6) === 2,
    );
    raw.socket.destroy();
    await raw.closed;
    // The same process reconnects: the broker says what it has, and drops the resend.
    const again = await RawClient.connect(b.socketPath);
    again.hello({ session: 'S1' });
    await waitFor(() => again.of(FrameType.Welcome).length === 1);
    expect(welcomeLastSeqIn(again.of(FrameType.Welcome)[0])).toBe(2);
    again.event(2, 'two');
    again.event(3, 'three');
    await waitFor(() => receiver.got.includes('three:x'));
    expect(receiver.got).toEqual(['one:x', 'two:x', 'three:x']);
    expect(b.stats().duplicates).toBe(2);
    // A new process with that worker id starts its numbering afresh.
    again.socket.destroy();
    const successor = await RawClient.connect(b.socketPath);
    successor.hello({ session: 'S2' });
    await waitFor(() => successor.of(FrameType.Welcome).length === 1);
    expect(welcomeLastSeqIn(successor.of(FrameType.Welcome)[0])).toBe(0);
    successor.socket.destroy();
  });

  it('tells a reconnecting poster again about a rejection it may have missed, before WELCOME', async () => {
    const { b } = await broker({ maxQueueLength: 1 });
    // Worker 1 is connected and never acknowledges: its queue of 1 stays full.
    const stuck = await RawClient.connect(b.socketPath);
    stuck.hello({ workerId: 1, session: 'stuck', window: 1 });
    const poster = await RawClient.connect(b.socketPath);
    poster.hello({ workerId: 0, session: 'P', postTimeoutMs: 1 });
    poster.event(1, 'fills');
    poster.event(2, 'waits');
    await waitFor(() => poster.of(FrameType.Reject).length === 1);
    expect(poster.of(FrameType.Reject)[0].readUIntBE(0, 6)).toBe(2);
    expect(b.stats().rejected).toBe(1);
    poster.socket.destroy();
    await poster.closed;
    // As if the REJECT and the ack were lost with the connection: acked nothing yet.
    const again = await RawClient.connect(b.socketPath);
    again.hello({ workerId: 0, session: 'P', ackedSeq: 0 });
    await waitFor(() => again.of(FrameType.Welcome).length === 1);
    expect(again.frames[0].type).toBe(FrameType.Reject);
    expect(again.frames[0].body.readUIntBE(0, 6)).toBe(2);
    expect(welcomeLastSeqIn(again.of(FrameType.Welcome)[0])).toBe(2);
    again.socket.destroy();
    // Once the poster had the ack of 2, there is nothing to tell.
    const third = await RawClient.connect(b.socketPath);
    third.hello({ workerId: 0, session: 'P', ackedSeq: 2 });
    await waitFor(() => third.of(FrameType.Welcome).length === 1);
    expect(third.of(FrameType.Reject)).toHaveLength(0);
    third.socket.destroy();
    stuck.socket.destroy();
  });

  it('drops the oldest event of a disconnected worker whose queue is full, counted and logged', async () => {
    const { b, logger } = await broker({ maxQueueLength: 3 });
    const poster = await worker(b.socketPath, 0, {});
    for (let i = 0; i < 5; i++) await poster.bus.post('fill', `e${i}`, i);
    expect(b.stats().dropped).toBe(2);
    // Repeats of one cause go through the WarningLimiter: one line now, the repeat counted in the next.
    expect(logger.lines.filter(l => l.includes('dropped its oldest event fill/e'))).toHaveLength(1);
    expect(
      logger.lines.some(l =>
        l.includes(
          'queue of worker #1 is full (3) while it is not connected; dropped its oldest event fill/e0',
        ),
      ),
    ).toBe(true);
    const late = await worker(b.socketPath, 1);
    await waitFor(() => late.got.length === 3);
    expect(late.got).toEqual(['fill:2', 'fill:3', 'fill:4']);
    expect(Math.max(...b.queueHighWaters())).toBe(3);
  });

  it('refuses an event over its payload limit; that post fails and is never resent', async () => {
    const { b, logger } = await broker({ maxPayloadBytes: 1000 });
    // A worker configured with a larger limit than its broker.
    const w = await worker(b.socketPath, 0, { maxPayloadBytes: 100_000 });
    await expect(w.bus.post('big', 'x', 'a'.repeat(2000))).rejects.toThrow(IpcFrameRefusedError);
    expect(
      logger.lines.some(l =>
        /payload of 2002 bytes exceeds the limit of 1000 bytes; event big\/x \(id /.test(l),
      ),
    ).toBe(true);
    await waitFor(() => w.bus.stats().transport.reconnects >= 1);
    await w.bus.post('small', 'x', 'fine');
    await waitFor(() => w.got.includes('small:fine'));
    expect(b.stats().refusedFrames).toBe(1);
    expect(w.got.some(g => g.startsWith('big:'))).toBe(false);
  });

  it('delivers large payloads up to the limit, unique ones included (the original: 64 KiB+1, 640 KiB unique, 1 MiB under 2 MiB)', async () => {
    const maxPayloadBytes = 2 * 1024 * 1024;
    const { b } = await broker({ maxPayloadBytes });
    const a = await worker(b.socketPath, 0, { maxPayloadBytes });
    const c = await worker(b.socketPath, 1, { maxPayloadBytes });
    const sizes = [65_537, 655_350, 1024 * 1024];
    await a.bus.post('big', 'x', 'a'.repeat(sizes[0]));
    await c.bus.post('big', 'x', 'b'.repeat(sizes[1]), { unique: 'big-unique' });
    await a.bus.post('big', 'x', 'c'.repeat(sizes[2]));
    await waitFor(() => a.got.length + c.got.length === 5);
    const lengths = (got: string[]): number[] => got.map(g => g.length - 'big:'.length);
    expect(lengths(a.got).filter(l => l === sizes[0] || l === sizes[2])).toEqual([
      sizes[0],
      sizes[2],
    ]);
    expect(lengths(c.got).filter(l => l === sizes[0] || l === sizes[2])).toEqual([
      sizes[0],
      sizes[2],
    ]);
    expect([...lengths(a.got), ...lengths(c.got)].filter(l => l === sizes[1])).toHaveLength(1);
    await expect(a.bus.post('big', 'x', 'd'.repeat(maxPayloadBytes))).rejects.toThrow(
      'exceeds the limit of 2097152 bytes',
    );
  });

  it('unique: one run per key within the TTL, accepted again after it (injected clock)', async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const socketPath = path.join(dir, `u${n++}.sock`);
    const host = new EventBus({
      logger: silentLogger,
      clock,
      unique: { ttlMs: 40 },
      transport: new IpcTransport({ socketPath, workerId: 0, workerCount: 2 }),
    });
    const other = new EventBus({
      logger: silentLogger,
      transport: new IpcTransport({ socketPath, workerId: 1, workerCount: 2, hostBroker: false }),
    });
    cleanup.push(() => host.close({ timeoutMs: 1000 }));
    cleanup.push(() => other.close({ timeoutMs: 1000 }));
    const handled: number[] = [];
    const markers: number[] = [];
    for (const bus of [host, other]) {
      bus.register(data => void handled.push(data as number), 'u');
      bus.register(data => void markers.push(data as number), 'marker');
    }
    await host.connect();
    await other.connect();
    host.start();
    other.start();
    const round = async (values: number[], marker: number): Promise<void> => {
      for (const value of values)
        await (value % 2 ? other : host).post('u', 'job', value, { unique: 'refresh' });
      await host.post('marker', 'm', marker);
      await waitFor(() => markers.filter(m => m === marker).length === 2);
    };
    await round([1, 2, 3], 1);
    expect(handled).toEqual([1]);
    now += 39;
    await round([4], 2);
    expect(handled).toEqual([1]);
    now += 2;
    await round([6, 7], 3);
    expect(handled).toEqual([1, 6]);
    expect(host.stats().transport.brokerUniqueDropped).toBe(4);
  });
});
