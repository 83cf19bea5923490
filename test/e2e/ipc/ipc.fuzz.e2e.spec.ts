import fc from 'fast-check';
import net from 'node:net';
import path from 'node:path';
import { IpcBroker } from '../../../lib/transports/ipc/ipc.broker.js';
import {
  FrameType,
  IPC_MAGIC,
  IPC_PROTOCOL_VERSION,
} from '../../../lib/transports/ipc/ipc.constants.js';
import { FrameWriter } from '../../../lib/transports/ipc/ipc.frame.js';
import { killAllChildren } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait-for.js';
import { command, memoryLogger, received, socketDir, startWorker } from './ipc-helpers.js';

function hello(workerId: number): Buffer {
  const w = new FrameWriter();
  w.begin(FrameType.Hello);
  w.u32(IPC_MAGIC);
  w.u8(IPC_PROTOCOL_VERSION);
  w.i32(workerId);
  w.u32(process.pid);
  w.u48(0);
  w.u48(0);
  w.u32(16);
  w.u32(100);
  w.str(`rogue-${Math.random()}`);
  w.end();
  return w.take();
}

/** Writes the bytes as a rogue client and waits until the broker closed on it or (still waiting for more) has read them. */
async function rogue(socketPath: string, bytes: Buffer): Promise<void> {
  const socket = net.connect(socketPath);
  socket.on('error', () => undefined);
  // Read (and discard) what the broker answers, so its end and close reach us.
  socket.resume();
  const closed = new Promise<void>(resolve => socket.once('close', () => resolve()));
  await new Promise<void>(resolve => socket.once('connect', () => resolve()));
  socket.write(bytes);
  // Half-close: the broker sees the end of our bytes, answers, and the connection ends either way.
  socket.end();
  await closed;
}

afterAll(() => killAllChildren());

describe('ipc e2e: a live broker fed random bytes', () => {
  it('keeps serving a healthy worker process while rogue clients send garbage', async () => {
    const dir = socketDir();
    const logger = memoryLogger();
    const broker = new IpcBroker(
      { socketPath: path.join(dir, 'fuzz.sock'), workerCount: 2 },
      { logger },
    );
    await broker.listen();
    try {
      const healthy = await startWorker({
        socketPath: broker.socketPath,
        workerId: 0,
        workerCount: 2,
      });
      let round = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ minLength: 1, maxLength: 256 }),
            // A valid handshake for worker 1 followed by garbage: the broker must survive framed nonsense too.
            fc
              .uint8Array({ minLength: 1, maxLength: 256 })
              .map(tail => new Uint8Array([...hello(1), ...tail])),
          ),
          async bytes => {
            await rogue(broker.socketPath, Buffer.from(bytes));
            const marker = `m${round++}`;
            command(healthy, { cmd: 'post', source: 'alive', event: 'x', data: marker });
            await waitFor(() => received(healthy, 'alive').includes(`alive/x "${marker}" remote`));
          },
        ),
        { numRuns: 60 },
      );
      expect(broker.stats().refusedFrames).toBeGreaterThan(0);
      expect(
        logger.lines.some(line => line.startsWith('warn ipc frame-refused: refused a frame')),
      ).toBe(true);
      expect(broker.connectedWorkers).toContain(0);
    } finally {
      await broker.close();
    }
  });
});

describe('ipc e2e: an elected broker (independent processes) fed random bytes', () => {
  it('keeps serving the healthy workers while a rogue client sends garbage over the socket', async () => {
    const socketPath = path.join(socketDir(), 'elected.sock');
    // Worker id 2 is the rogue's: it never takes a healthy worker's place.
    const spec = { socketPath, workerCount: 3, failover: true };
    const host = await startWorker({ ...spec, workerId: 0 });
    const healthy = await startWorker({ ...spec, workerId: 1 });
    await healthy.waitForLine('status connected worker');
    expect(host.lines).toContain('status connected broker');
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 256 }),
          fc
            .uint8Array({ minLength: 1, maxLength: 256 })
            .map(tail => new Uint8Array([...hello(2), ...tail])),
        ),
        async bytes => {
          await rogue(socketPath, Buffer.from(bytes));
          const marker = `e${round++}`;
          command(healthy, { cmd: 'post', source: 'alive', event: 'x', data: marker });
          const line = `alive/x "${marker}" remote`;
          await waitFor(
            () =>
              received(healthy, 'alive').includes(line) && received(host, 'alive').includes(line),
          );
        },
      ),
      { numRuns: 30 },
    );
    // Still the same broker: the garbage never brought it down.
    expect(healthy.count('status disconnected')).toBe(0);
    expect(host.count(/^warn ipc frame-refused: refused a frame/)).toBeGreaterThan(0);
  });
});
