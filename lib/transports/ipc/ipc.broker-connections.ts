import type { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { Clock } from '../../common/clock.js';
import { describeError } from '../../common/describe-error.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import type { WarningLimiter } from '../../common/warning-limiter.js';
import { writeReject, type HeldPosts } from './ipc.backlog.js';
import { BrokerConnection } from './ipc.broker-state.js';
import type { IpcBrokerEvents } from './ipc.broker.types.js';
import { describeEventBody, scanEventBody, type BodyScan } from './ipc.codec.js';
import { FrameType, SEQ_BYTES } from './ipc.constants.js';
import { IpcProtocolError } from './ipc.errors.js';
import { BodyReader, ByteSlab } from './ipc.frame.js';
import { readHello, writeWelcome } from './ipc.handshake.js';
import {
  CUT_OFF_MS,
  MAX_REFUSALS,
  REFUSAL_WINDOW_MS,
  writeRefusal,
  type Offenders,
} from './ipc.offenders.js';
import type { ResolvedIpcBrokerOptions } from './ipc.options.js';
import type { WorkerQueues } from './ipc.queues.js';
import type { WriteBatcher } from './ipc.writes.js';

/** What the connection handling needs of the broker: its parts, emitter and identity. */
export interface BrokerParts {
  readonly options: ResolvedIpcBrokerOptions;
  /** The broker's life, sent in WELCOME. */
  readonly session: string;
  readonly maxFrameBytes: number;
  readonly queues: WorkerQueues;
  readonly held: HeldPosts;
  readonly offenders: Offenders;
  readonly writes: WriteBatcher;
  readonly events: EventEmitter<IpcBrokerEvents>;
  readonly logger: HeraldLogger;
  readonly limiter: WarningLimiter;
  readonly clock: Clock;
  /** True once the broker closes: new connections are refused. */
  isClosed(): boolean;
}

/**
 * The broker's connection handling: accepting a client, the handshake
 * timeout, reading its frames in order (HELLO, EVENT, ACK), the handshake
 * itself (identity conflicts, cut-off sessions, the WELCOME), refusals of bad
 * frames, and unbinding a connection from its worker slot when it closes.
 */
export class BrokerConnections {
  readonly all = new Set<BrokerConnection>();
  private nextConnectionId = 1;
  private readonly body = new BodyReader();
  private readonly slab = new ByteSlab();
  private readonly scan: BodyScan = { unique: undefined, payloadBytes: 0 };
  readonly counters = { refusedFrames: 0, identityConflicts: 0, handshakeTimeouts: 0 };
  private readonly options: ResolvedIpcBrokerOptions;
  private readonly queues: WorkerQueues;
  private readonly held: HeldPosts;
  private readonly offenders: Offenders;
  private readonly writes: WriteBatcher;
  private readonly events: EventEmitter<IpcBrokerEvents>;
  private readonly logger: HeraldLogger;
  private readonly limiter: WarningLimiter;
  private readonly clock: Clock;

  constructor(private readonly parts: BrokerParts) {
    ({
      options: this.options,
      queues: this.queues,
      held: this.held,
      offenders: this.offenders,
      writes: this.writes,
      events: this.events,
      logger: this.logger,
      limiter: this.limiter,
      clock: this.clock,
    } = parts);
  }

  private isClosed(): boolean {
    return this.parts.isClosed();
  }

  /** A new client connection: it has handshakeTimeoutMs to say HELLO. */
  accept(socket: net.Socket): void {
    if (this.isClosed()) {
      socket.destroy();
      return;
    }
    const c = new BrokerConnection(socket, this.nextConnectionId++);
    this.all.add(c);
    c.handshakeTimer = setTimeout(() => this.handshakeTimedOut(c), this.options.handshakeTimeoutMs);
    c.handshakeTimer.unref();
    socket.on('data', chunk => this.onData(c, chunk));
    socket.on('error', error =>
      this.logger.debug?.(`ipc broker: ${c.describe()}: ${error.message}`),
    );
    socket.on('close', () => this.onClose(c));
  }

  /** Half-open or idle connections would hold a descriptor for ever. */
  private handshakeTimedOut(c: BrokerConnection): void {
    c.handshakeTimer = undefined;
    if (c.slot || c.closing) return;
    this.counters.handshakeTimeouts++;
    this.limiter.warn(
      'handshake-timeout',
      logLine(
        'ipc',
        'hello-timeout',
        `${c.describe()} sent no HELLO within ${this.options.handshakeTimeoutMs} ms; closing it`,
        { timeouts: this.counters.handshakeTimeouts },
      ),
    );
    c.closing = true;
    c.socket.destroy();
  }

  private onData(c: BrokerConnection, chunk: Buffer): void {
    if (c.closing) return;
    c.chunkAt = this.clock.now();
    c.reader.push(chunk);
    this.process(c);
  }

  /**
   * Handles the connection's buffered frames in order. The socket is never
   * paused: acks behind a waiting event must still be read, or a worker
   * that both posts and receives would wait on itself.
   */
  private process(c: BrokerConnection): void {
    if (c.closing) return;
    try {
      while (c.reader.next()) {
        c.currentSeq = 0;
        this.handleFrame(c);
        c.reader.consume();
      }
    } catch (error) {
      let reason = describeError(error);
      const { reader } = c;
      // A refused event is never delivered: say which one, when it can be told.
      if (c.currentSeq > 0 && reader.end - reader.start > SEQ_BYTES) {
        const body = reader.buf.subarray(reader.start + SEQ_BYTES, reader.end);
        const what = describeEventBody(body);
        if (what !== '(undecodable event)') reason += `; event ${what}`;
      }
      this.refuse(c, c.currentSeq, reason);
    }
  }

  private handleFrame(c: BrokerConnection): void {
    const { reader } = c;
    const r = this.body.reset(reader.buf, reader.start, reader.end);
    if (!c.slot && reader.type !== FrameType.Hello) {
      throw new IpcProtocolError(`expected a HELLO frame first, got type ${reader.type}`);
    }
    switch (reader.type) {
      case FrameType.Hello:
        this.hello(c, r);
        return;
      case FrameType.Event: {
        const seq = r.u48('seq');
        c.currentSeq = seq;
        const bodyStart = r.pos;
        const scan = scanEventBody(r, this.scan);
        if (scan.payloadBytes > this.options.maxPayloadBytes) {
          throw new IpcProtocolError(
            `payload of ${scan.payloadBytes} bytes exceeds the limit of ${this.options.maxPayloadBytes} bytes`,
          );
        }
        // One copy, shared by every queue; the read buffer is not retained.
        const body = this.slab.copy(reader.buf, bodyStart, reader.end);
        this.held.offer(c, seq, body, scan.unique);
        return;
      }
      case FrameType.Ack: {
        const seq = r.u48('seq');
        r.done('ack');
        this.queues.acked(c.slot!, seq);
        return;
      }
      default:
        throw new IpcProtocolError(`unexpected frame type ${reader.type}`);
    }
  }

  private hello(c: BrokerConnection, r: BodyReader): void {
    if (c.slot) throw new IpcProtocolError('a second HELLO');
    const hello = readHello(r, this.queues.slots.length);
    const { workerId, pid, session } = hello;
    const slot = this.queues.slots[workerId];
    // Checked before it may replace anyone's connection.
    if (this.offenders.isCutOff(session)) {
      throw new IpcProtocolError(
        `worker #${workerId} (session ${session}) is cut off: its connections sent ${MAX_REFUSALS} refused frames within ${REFUSAL_WINDOW_MS} ms`,
      );
    }
    const previous = slot.connection;
    if (previous && previous !== c && !previous.closing && previous.session !== session) {
      // Another live process holds this id: displacing it would hand its queue and dedup state to a stranger.
      this.counters.identityConflicts++;
      this.limiter.error(
        `identity-conflict-${workerId}`,
        logLine(
          'ipc',
          'worker-id-conflict',
          `refused a HELLO for worker #${workerId} from pid ${pid} (session ${session}): worker #${workerId} is connected from pid ${previous.pid} (session ${previous.session})`,
          { worker: workerId, pid, session },
        ),
      );
      throw new IpcProtocolError(
        `worker id ${workerId} is in use by pid ${previous.pid} (another session)`,
      );
    }
    if (c.handshakeTimer) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = undefined;
    c.session = session;
    c.pid = pid;
    c.window = Math.min(hello.window, this.options.maxQueueLength);
    c.postTimeoutMs = hello.postTimeoutMs;
    c.reader.maxFrameBytes = this.parts.maxFrameBytes;
    this.queues.attach(c, slot, session, hello.lastReceived);
    if (previous && previous !== c) {
      this.limiter.warn(
        `reconnected-${workerId}`,
        logLine(
          'ipc',
          'worker-replaced-connection',
          `worker #${workerId} connected again (pid ${pid}); closing its previous connection`,
          { worker: workerId, pid },
        ),
      );
      this.detach(previous, 'replaced by a new connection');
      previous.closing = true;
      previous.socket.destroy();
    }
    const w = c.writer;
    // Rejections it may have missed (the connection dropped before our ack reached it), before WELCOME.
    while ((slot.rejected.at(0) ?? Infinity) <= hello.ackedSeq) slot.rejected.shift();
    for (let i = 0; i < slot.rejected.length; i++)
      writeReject(w, slot.rejected.at(i)!, this.options.maxQueueLength);
    writeWelcome(w, {
      lastSeqIn: slot.lastSeqIn,
      maxFrameBytes: this.parts.maxFrameBytes,
      workerCount: this.queues.slots.length,
      sendWindow: this.options.maxQueueLength,
      brokerSession: this.parts.session,
      host: this.queues.hostSlot === slot && session === this.queues.hostSession,
    });
    c.ackSent = c.ackDue = slot.lastSeqIn;
    // Told again on every connection: the client may have missed the last one.
    c.deliveredSent = 0;
    c.witnessedSent = 0;
    c.releasedSent = 0;
    this.queues.pump(slot);
    this.writes.markDirty(c);
    this.logger.debug?.(`ipc broker: worker #${workerId} connected (pid ${pid})`);
    this.events.emit('connected', workerId, pid);
  }

  /** Logs and counts a refused frame, tells the client which, and closes its connection. */
  private refuse(c: BrokerConnection, seq: number, reason: string): void {
    if (c.closing) return;
    this.counters.refusedFrames++;
    const session = c.session;
    if (session !== undefined && this.offenders.offended(session)) {
      this.logger.error(
        logLine(
          'ipc',
          'worker-cut-off',
          `${c.describe()} (session ${session}) sent ${MAX_REFUSALS} refused frames within ${REFUSAL_WINDOW_MS} ms; refusing its connections for ${CUT_OFF_MS} ms`,
          { worker: c.slot?.id, session },
        ),
      );
    }
    this.limiter.warn(
      `refused-${session ?? c.id}`,
      logLine(
        'ipc',
        'frame-refused',
        `refused a frame from ${c.describe()}: ${reason}; closing the connection`,
        {
          worker: c.slot?.id,
          seq: seq > 0 ? seq : undefined,
        },
      ),
    );
    writeRefusal(c, seq, reason);
    this.detach(c, `refused: ${reason}`);
    this.events.emit('refused', reason, c.slot?.id);
  }

  /** Unbinds a connection from its worker slot: what was sent and not acked will be sent again. */
  private detach(c: BrokerConnection, reason: string): void {
    this.held.forget(c);
    const slot = c.slot;
    if (!slot || slot.connection !== c) return;
    this.queues.detach(slot);
    this.logger.debug?.(`ipc broker: worker #${slot.id} disconnected (${reason})`);
    this.events.emit('disconnected', slot.id, reason);
    // Its queue now drops oldest instead of holding posters back.
    this.held.retry();
  }

  private onClose(c: BrokerConnection): void {
    if (c.handshakeTimer) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = undefined;
    this.all.delete(c);
    this.writes.forget(c);
    c.closing = true;
    this.detach(c, 'connection closed');
  }
}
