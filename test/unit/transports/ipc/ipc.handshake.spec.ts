import {
  IPC_MAGIC,
  IPC_PROTOCOL_VERSION,
  FrameType,
} from '../../../../lib/transports/ipc/ipc.constants.js';
import { IpcProtocolError } from '../../../../lib/transports/ipc/ipc.errors.js';
import { BodyReader, FrameReader, FrameWriter } from '../../../../lib/transports/ipc/ipc.frame.js';
import {
  readHello,
  readWelcome,
  writeHello,
  writeWelcome,
  type Hello,
} from '../../../../lib/transports/ipc/ipc.handshake.js';

/** The one frame in `bytes`, as a body reader and its type. */
function frame(bytes: Buffer): { type: number; r: BodyReader } {
  const reader = new FrameReader(1 << 20);
  reader.push(bytes);
  expect(reader.next()).toBe(true);
  return { type: reader.type, r: new BodyReader().reset(reader.buf, reader.start, reader.end) };
}

const hello: Hello = {
  workerId: 3,
  pid: 4242,
  lastReceived: 2 ** 40,
  ackedSeq: 17,
  window: 64,
  postTimeoutMs: 5000,
  session: 'session-é',
};

describe('ipc handshake', () => {
  it('HELLO written by the client reads back field for field at the broker', () => {
    const w = new FrameWriter();
    writeHello(w, hello);
    const { type, r } = frame(w.take());
    expect(type).toBe(FrameType.Hello);
    expect(readHello(r, 4)).toEqual(hello);
  });

  it('WELCOME written by the broker reads back at the client, the host flag included', () => {
    for (const host of [true, false]) {
      const w = new FrameWriter();
      const welcome = {
        lastSeqIn: 99,
        maxFrameBytes: 70_000,
        workerCount: 4,
        sendWindow: 128,
        brokerSession: 'b1',
        host,
      };
      writeWelcome(w, welcome);
      const { type, r } = frame(w.take());
      expect(type).toBe(FrameType.Welcome);
      expect(readWelcome(r)).toEqual(welcome);
    }
  });

  it.each([
    ['a worker id outside workerCount', { ...hello, workerId: 4 }, /worker id 4 is outside 0\.\.3/],
    ['a window of 0', { ...hello, window: 0 }, /window must be >= 1/],
  ])('refuses a HELLO with %s', (_name, bad, message) => {
    const w = new FrameWriter();
    writeHello(w, bad);
    expect(() => readHello(frame(w.take()).r, 4)).toThrow(message);
  });

  it('refuses a stranger (bad magic), another protocol version and trailing bytes', () => {
    const build = (magic: number, version: number, extra: boolean): BodyReader => {
      const w = new FrameWriter();
      w.begin(FrameType.Hello);
      w.u32(magic);
      w.u8(version);
      w.i32(0);
      w.u32(1);
      w.u48(0);
      w.u48(0);
      w.u32(1);
      w.u32(1);
      w.str('s');
      if (extra) w.u8(0);
      w.end();
      return frame(w.take()).r;
    };
    expect(() => readHello(build(1, IPC_PROTOCOL_VERSION, false), 1)).toThrow(/bad magic/);
    expect(() => readHello(build(IPC_MAGIC, 99, false), 1)).toThrow(/protocol version 99/);
    expect(() => readHello(build(IPC_MAGIC, IPC_PROTOCOL_VERSION, true), 1)).toThrow(
      IpcProtocolError,
    );
  });

  it('refuses a WELCOME with a send window of 0', () => {
    const w = new FrameWriter();
    writeWelcome(w, {
      lastSeqIn: 0,
      maxFrameBytes: 1,
      workerCount: 1,
      sendWindow: 0,
      brokerSession: 'b',
      host: false,
    });
    expect(() => readWelcome(frame(w.take()).r)).toThrow(/send window of 0/);
  });
});
