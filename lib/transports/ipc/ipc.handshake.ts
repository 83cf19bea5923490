import { IPC_MAGIC, IPC_PROTOCOL_VERSION, WELCOME_HOST, FrameType } from './ipc.constants.js';
import { IpcProtocolError } from './ipc.errors.js';
import type { BodyReader, FrameWriter } from './ipc.frame.js';

/*
 * The handshake, both sides: a client opens with HELLO (who it is and what
 * it has), the broker answers WELCOME (what it accepted and its limits).
 * Field order is the wire format; both sides read and write it here only.
 */

/** What a client says in its HELLO. */
export interface Hello {
  readonly workerId: number;
  readonly pid: number;
  /** Highest seq received from this broker life (0 after a new broker). */
  readonly lastReceived: number;
  /** Highest of its own seqs the broker acknowledged. */
  readonly ackedSeq: number;
  /** Its receive window: events it may hold unacknowledged. */
  readonly window: number;
  readonly postTimeoutMs: number;
  /** Per-process identity: the broker drops resends by session + seq. */
  readonly session: string;
}

/** What the broker answers in WELCOME. */
export interface Welcome {
  /** Highest seq of this client's session the broker accepted. */
  readonly lastSeqIn: number;
  readonly maxFrameBytes: number;
  readonly workerCount: number;
  /** Unacknowledged event frames the client may have in flight. */
  readonly sendWindow: number;
  /** Changes with every broker life. */
  readonly brokerSession: string;
  /** The client runs in the process hosting the broker. */
  readonly host: boolean;
}

export function writeHello(w: FrameWriter, hello: Hello): void {
  w.begin(FrameType.Hello);
  w.u32(IPC_MAGIC);
  w.u8(IPC_PROTOCOL_VERSION);
  w.i32(hello.workerId);
  w.u32(hello.pid);
  w.u48(hello.lastReceived);
  w.u48(hello.ackedSeq);
  w.u32(hello.window);
  w.u32(hello.postTimeoutMs);
  w.str(hello.session);
  w.end();
}

/** Reads and checks a HELLO body; throws {@link IpcProtocolError} naming what is wrong. */
export function readHello(r: BodyReader, workerCount: number): Hello {
  const magic = r.u32('magic');
  if (magic !== IPC_MAGIC) throw new IpcProtocolError('not a nest-herald client (bad magic)');
  const version = r.u8('version');
  if (version !== IPC_PROTOCOL_VERSION) {
    throw new IpcProtocolError(
      `unsupported protocol version ${version} (this broker speaks ${IPC_PROTOCOL_VERSION})`,
    );
  }
  const workerId = r.i32('workerId');
  const pid = r.u32('pid');
  const lastReceived = r.u48('lastReceived');
  const ackedSeq = r.u48('ackedSeq');
  const window = r.u32('window');
  const postTimeoutMs = r.u32('postTimeoutMs');
  const session = r.str('session');
  r.done('hello');
  if (workerId < 0 || workerId >= workerCount) {
    throw new IpcProtocolError(
      `worker id ${workerId} is outside 0..${workerCount - 1} (workerCount ${workerCount})`,
    );
  }
  if (window < 1) throw new IpcProtocolError('window must be >= 1');
  return { workerId, pid, lastReceived, ackedSeq, window, postTimeoutMs, session };
}

export function writeWelcome(w: FrameWriter, welcome: Welcome): void {
  w.begin(FrameType.Welcome);
  w.u8(IPC_PROTOCOL_VERSION);
  w.u48(welcome.lastSeqIn);
  w.u32(welcome.maxFrameBytes);
  w.u32(welcome.workerCount);
  w.u32(welcome.sendWindow);
  w.str(welcome.brokerSession);
  w.u8(welcome.host ? WELCOME_HOST : 0);
  w.end();
}

/** Reads and checks a WELCOME body; throws {@link IpcProtocolError} naming what is wrong. */
export function readWelcome(r: BodyReader): Welcome {
  const version = r.u8('version');
  const lastSeqIn = r.u48('lastSeqIn');
  const maxFrameBytes = r.u32('maxFrameBytes');
  const workerCount = r.u32('workerCount');
  const sendWindow = r.u32('sendWindow');
  const brokerSession = r.str('brokerSession');
  const flags = r.u8('flags');
  r.done('welcome');
  if (sendWindow < 1) throw new IpcProtocolError('send window of 0');
  if (version !== IPC_PROTOCOL_VERSION)
    throw new IpcProtocolError(`broker speaks protocol version ${version}`);
  return {
    lastSeqIn,
    maxFrameBytes,
    workerCount,
    sendWindow,
    brokerSession,
    host: (flags & WELCOME_HOST) !== 0,
  };
}
