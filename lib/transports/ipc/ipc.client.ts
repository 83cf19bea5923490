import { randomUUID } from 'node:crypto';
import { describeError } from '../../common/describe-error.js';
import net from 'node:net';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import { PayloadTooLargeError, QueueFullError, TransportClosedError } from '../../common/errors.js';
import type { HeraldLogger } from '../../common/logger.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type {
  Delivery,
  PublishResult,
  Settlement,
  TransportState,
} from '../../interfaces/transport.interface.js';
import { decodeEventBody, encodeEventBody } from './ipc.codec.js';
import {
  DELIVER_WITNESS,
  FrameType,
  HANDLED_IDS_CACHE_SIZE,
  IPC_MAGIC,
  IPC_PROTOCOL_VERSION,
  MAX_PAYLOAD_LIMIT,
  MAX_UNANSWERED_POSTS,
  METADATA_ALLOWANCE_BYTES,
  RECONNECT_CAP_MS,
  RECONNECT_MAX_MS,
  RECONNECT_MIN_MS,
  WELCOME_HOST,
} from './ipc.constants.js';
import { IpcFrameRefusedError, IpcProtocolError, IpcSocketError } from './ipc.errors.js';
import { BodyReader, FrameReader, FrameWriter } from './ipc.frame.js';
import { Ring } from './ipc.ring.js';
import { checkSocketFile } from './ipc.socket.js';

const ACCEPTED: PublishResult = Object.freeze({ ok: true });
const EMPTY = Buffer.alloc(0);
/** Seq numbers are 48-bit on the wire; a worker may read up to the broker's largest frame. */
const MAX_INCOMING_FRAME = MAX_PAYLOAD_LIMIT + METADATA_ALLOWANCE_BYTES + 64;

export interface IpcClientOptions {
  readonly socketPath: string;
  readonly workerId: number;
  /** Events the broker may send before this worker acknowledges them. */
  readonly window: number;
  readonly postTimeoutMs: number;
  /** Limit of an event frame until the broker states its own. */
  readonly maxFrameBytes: number;
  readonly maxQueueLength: number;
  readonly logger: HeraldLogger;
  deliver(delivery: Delivery): void;
  status(state: TransportState, reason?: string): void;
}

/** One `publish` call: resolved once every frame of it was acknowledged, rejected or refused. */
interface PendingBatch {
  readonly results: PublishResult[];
  /** Frames of it not sent by then fail with QueueFullError (never sent). */
  readonly deadline: number;
  remaining: number;
  resolve(results: readonly PublishResult[]): void;
}

/** Posts not yet encoded: more than the window plus maxQueueLength are unacknowledged. */
interface WaitingBatch {
  readonly envelopes: readonly Envelope[];
  readonly state: PendingBatch;
  next: number;
}

/** A sent (or to-be-sent) event frame, kept until the broker acknowledges it, for resending. */
interface PendingFrame {
  readonly seq: number;
  chunk: Buffer;
  readonly start: number;
  readonly end: number;
  readonly batch: PendingBatch;
  readonly index: number;
  error?: Error;
  finished: boolean;
  /** Written on the current connection (counts against the broker's window until acknowledged). */
  sent: boolean;
  /** Accepted (its post resolved) by a broker that died before delivering it everywhere: resent to the next one. */
  replay: boolean;
  /** When the broker acknowledged it (the broker's own process resolves on WITNESSED, at most postTimeoutMs later). */
  ackedAt: number;
}

/** A copy of a post of the broker's process, kept until RELEASED, to resend to a next broker. */
interface WitnessCopy {
  readonly hostSeq: number;
  readonly envelope: Envelope;
}

/** A delivered event; settling it lets the cumulative ack move past it. */
class IpcDelivery implements Delivery {
  readonly attempt = 1;
  done = false;

  constructor(
    readonly envelope: Envelope,
    readonly seq: number,
    readonly epoch: number,
    private readonly client: IpcClient,
  ) {}

  settle(settlement: Settlement): void {
    this.client.settled(this, settlement);
  }
}

/**
 * The worker side of the ipc protocol: one connection to the broker, with
 * a sequence number on every event frame, resend of what the broker has not
 * acknowledged after a reconnect, and a cumulative ack of what this
 * worker's handlers settled. Reconnects with a random back-off.
 */
export class IpcClient {
  /** Per-process identity of this client: the broker drops resends by session + seq. */
  readonly session = randomUUID();
  private socket?: net.Socket;
  private readonly reader = new FrameReader(MAX_INCOMING_FRAME);
  private readonly body = new BodyReader();
  private readonly encoder = new FrameWriter();
  private readonly control = new FrameWriter();
  private pending = new Ring<PendingFrame>();
  private readonly waiting = new Ring<WaitingBatch>();
  /** Posts not yet encoded (bounded: beyond the limit a post fails at once with QueueFullError). */
  private waitingCount = 0;
  /**
   * Frames the broker acknowledged but has not yet delivered to every worker
   * (consecutive seqs, ending at the ack): resent if a new broker takes over.
   */
  private retained = new Ring<PendingFrame>();
  /** Highest seq the broker said left every worker queue. */
  private deliveredSeq = 0;
  private unfinished = 0;
  private outSeq = 0;
  private readonly out: Buffer[] = [];
  /** Highest seq written on the current connection. */
  private sentUpTo = 0;
  /** Highest seq the broker acknowledged (cumulative). */
  private ackedSeq = 0;
  /** Unacknowledged frames the broker lets us have in flight (its maxQueueLength). */
  private sendWindow: number;
  /** Frames written on this connection and not yet acknowledged. */
  private unackedSent = 0;
  private expiryTimer?: NodeJS.Timeout;
  private flushScheduled = false;
  private connected = false;
  private closed = false;
  private intake = true;
  private brokerSession?: string;
  private epoch = 0;
  private lastReceived = 0;
  private resending = false;
  private unsettled = new Ring<IpcDelivery>();
  private ackPoint = 0;
  private ackSent = 0;
  private maxFrameBytes: number;
  private attempts = 0;
  private everConnected = false;
  private reconnectTimer?: NodeJS.Timeout;
  private firstConnect?: { resolve(): void; reject(error: Error): void };
  private idleWaiters: (() => void)[] = [];
  private warnedUnreachable = false;
  /** This process hosts the broker it is connected to: posts resolve on WITNESSED, not on the ack. */
  private hosting = false;
  /** Highest seq the broker said is witnessed (or delivered everywhere). */
  private witnessedSeq = 0;
  private witnessTimer?: NodeJS.Timeout;
  /** Copies of the broker process's posts this process received, until RELEASED. */
  private copies = new Ring<WitnessCopy>();
  /** Ids of events handed to the bus recently (bounded): a resent copy already handled is dropped. */
  private readonly handled = new Set<string>();
  private readonly handledOrder = new Ring<string>();
  private readonly limiter: WarningLimiter;
  readonly counters = {
    published: 0,
    delivered: 0,
    duplicatesIn: 0,
    acked: 0,
    nacked: 0,
    rejected: 0,
    refusedFrames: 0,
    resent: 0,
    reconnects: 0,
    decodeErrors: 0,
    pendingHighWater: 0,
    unsettledHighWater: 0,
    waitingHighWater: 0,
    retainedHighWater: 0,
    /** Acknowledged frames given up for a failover resend because the retained copies hit their bound. */
    retainedDropped: 0,
    /** Frames accepted by a broker that died, resent to the next one. */
    replayed: 0,
    /** Resent copies of events this process already handled, dropped (effectively once per process). */
    duplicateIdsDropped: 0,
    /** Copies of the broker process's posts kept here (witness), resent to a next broker after a failover. */
    witnessReplayed: 0,
    /** Witness copies given up because they hit their bound (logged). */
    witnessDropped: 0,
    /** Posts of the broker's own process resolved after postTimeoutMs with no witness (logged). */
    unwitnessedResolved: 0,
  };

  constructor(private readonly options: IpcClientOptions) {
    this.maxFrameBytes = options.maxFrameBytes;
    this.sendWindow = options.maxQueueLength;
    this.limiter = new WarningLimiter(options.logger);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Resolves on the first handshake; rejects when the socket fails the safety checks. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      void this.attempt();
    });
  }

  private async attempt(): Promise<void> {
    this.reconnectTimer = undefined;
    if (this.closed) return;
    let ready: boolean;
    try {
      ready = await checkSocketFile(this.options.socketPath);
    } catch (error) {
      const err = error instanceof Error ? error : new IpcSocketError(String(error));
      this.options.logger.error(`ipc: ${err.message}`);
      if (this.firstConnect && !this.everConnected) {
        this.firstConnect.reject(err);
        this.firstConnect = undefined;
        this.closed = true;
        return;
      }
      this.retry(err.message);
      return;
    }
    if (this.closed) return;
    if (!ready) {
      this.retry(`no broker socket at ${this.options.socketPath} yet`);
      return;
    }
    const socket = net.connect(this.options.socketPath);
    this.socket = socket;
    socket.setNoDelay?.(true);
    socket.on('connect', () => this.sendHello(socket));
    socket.on('data', chunk => this.onData(socket, chunk));
    socket.on('error', error => this.options.logger.debug?.(`ipc: socket error: ${error.message}`));
    socket.on('close', () => this.onClose(socket));
  }

  /** Tries to connect now instead of at the end of the back-off (a broker just started here). */
  retryNow(): void {
    if (this.closed || this.socket || !this.reconnectTimer) return;
    clearTimeout(this.reconnectTimer);
    void this.attempt();
  }

  private retry(reason: string): void {
    if (this.closed) return;
    this.attempts++;
    if (this.attempts === 50 && !this.warnedUnreachable) {
      this.warnedUnreachable = true;
      this.options.logger.warn(
        `ipc: cannot reach the broker yet (${this.attempts} attempts): ${reason}`,
      );
    }
    const spread = Math.min(RECONNECT_CAP_MS, RECONNECT_MAX_MS * 2 ** Math.min(this.attempts, 10));
    const delay = RECONNECT_MIN_MS + Math.random() * (spread - RECONNECT_MIN_MS);
    this.reconnectTimer = setTimeout(() => void this.attempt(), delay);
  }

  private sendHello(socket: net.Socket): void {
    const w = this.control;
    w.begin(FrameType.Hello);
    w.u32(IPC_MAGIC);
    w.u8(IPC_PROTOCOL_VERSION);
    w.i32(this.options.workerId);
    w.u32(process.pid);
    w.u48(this.lastReceived);
    w.u48(this.ackedSeq);
    w.u32(this.options.window);
    w.u32(this.options.postTimeoutMs);
    w.str(this.session);
    w.end();
    socket.write(w.take());
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    const reader = this.reader;
    reader.push(chunk);
    try {
      while (reader.next()) {
        this.handleFrame(this.body.reset(reader.buf, reader.start, reader.end), reader.type);
        reader.consume();
      }
    } catch (error) {
      this.options.logger.error(
        `ipc: bad frame from the broker: ${describeError(error)}; reconnecting`,
      );
      socket.destroy();
    }
  }

  private handleFrame(r: BodyReader, type: number): void {
    switch (type) {
      case FrameType.Welcome:
        return this.welcome(r);
      case FrameType.Deliver:
        return this.incoming(r);
      case FrameType.Ack: {
        const seq = r.u48('seq');
        r.done('ack');
        return this.ackedUpTo(seq);
      }
      case FrameType.Delivered: {
        const seq = r.u48('seq');
        r.done('delivered');
        return this.deliveredUpTo(seq);
      }
      case FrameType.Witnessed: {
        const seq = r.u48('seq');
        r.done('witnessed');
        return this.witnessedUpTo(seq);
      }
      case FrameType.Released: {
        const seq = r.u48('seq');
        r.done('released');
        for (let head = this.copies.at(0); head && head.hostSeq <= seq; head = this.copies.at(0))
          this.copies.shift();
        return;
      }
      case FrameType.Reject: {
        const seq = r.u48('seq');
        r.str('reason');
        const frame = this.find(seq);
        if (frame && !frame.error) {
          this.counters.rejected++;
          frame.error = new QueueFullError(
            'ipc broker queue of a connected worker',
            this.options.maxQueueLength,
          );
        }
        return;
      }
      case FrameType.Refuse: {
        const seq = r.u48('seq');
        const reason = r.str('reason');
        this.counters.refusedFrames++;
        this.options.logger.error(`ipc: the broker refused a frame (seq ${seq}): ${reason}`);
        const frame = seq > 0 ? this.find(seq) : undefined;
        // Never resent: the post fails with the broker's reason.
        if (frame && !frame.finished)
          this.finish(
            frame,
            new IpcFrameRefusedError(`the ipc broker refused this event: ${reason}`),
          );
        if (!this.connected && !this.everConnected && this.firstConnect) {
          // The handshake itself was refused at start-up (e.g. a worker id the broker does not know):
          // a configuration error to report, not a reason to retry forever.
          this.firstConnect.reject(
            new IpcFrameRefusedError(`the ipc broker refused this worker: ${reason}`),
          );
          this.firstConnect = undefined;
          this.closed = true;
          this.socket?.destroy();
        }
        return;
      }
      default:
        throw new IpcProtocolError(`unexpected frame type ${type}`);
    }
  }

  private welcome(r: BodyReader): void {
    const version = r.u8('version');
    const lastSeqIn = r.u48('lastSeqIn');
    const maxFrameBytes = r.u32('maxFrameBytes');
    r.u32('workerCount');
    const sendWindow = r.u32('sendWindow');
    const brokerSession = r.str('brokerSession');
    const flags = r.u8('flags');
    r.done('welcome');
    if (sendWindow < 1) throw new IpcProtocolError('send window of 0');
    if (version !== IPC_PROTOCOL_VERSION)
      throw new IpcProtocolError(`broker speaks protocol version ${version}`);
    const replayCopies: Envelope[] = [];
    if (brokerSession !== this.brokerSession) {
      if (this.brokerSession !== undefined) {
        // Posts of the dead broker's process this process keeps: the new broker gets them from here.
        for (let copy = this.copies.shift(); copy; copy = this.copies.shift())
          replayCopies.push(copy.envelope);
        this.counters.witnessReplayed += replayCopies.length;
        if (replayCopies.length > 0)
          this.options.logger.warn(
            `ipc: resending ${replayCopies.length} event(s) posted by the dead broker's process (this process kept copies)`,
          );
        this.options.logger.warn(
          `ipc: a new broker (${brokerSession}) replaced ${this.brokerSession}; resending ${this.retained.length} event(s) it had not delivered everywhere`,
        );
        this.replayRetained();
      }
      this.witnessedSeq = 0;
      // A new broker life numbers from 1 again: forget what we received from the old one.
      this.brokerSession = brokerSession;
      this.epoch++;
      this.lastReceived = 0;
      this.unsettled = new Ring<IpcDelivery>();
      this.ackPoint = 0;
      this.ackSent = 0;
    }
    this.hosting = (flags & WELCOME_HOST) !== 0;
    this.maxFrameBytes = maxFrameBytes;
    this.sendWindow = sendWindow;
    this.ackedSeq = lastSeqIn;
    this.connected = false;
    this.ackedUpTo(lastSeqIn);
    // Nothing is in flight on a new connection.
    for (let i = 0; i < this.pending.length; i++) this.pending.at(i)!.sent = false;
    this.unackedSent = 0;
    // Resend, in order, what the broker has not acknowledged (sendMore, once connected).
    this.sentUpTo = Math.max(lastSeqIn, (this.pending.at(0)?.seq ?? lastSeqIn + 1) - 1);
    this.resending = true;
    this.out.length = 0;
    if (this.ackPoint > 0) this.ackSent = -1;
    this.connected = true;
    this.everConnected = true;
    this.attempts = 0;
    this.warnedUnreachable = false;
    this.options.status('connected');
    if (replayCopies.length > 0) void this.publish(replayCopies);
    this.sendMore();
    this.resending = false;
    this.scheduleFlush();
    if (this.firstConnect) {
      this.firstConnect.resolve();
      this.firstConnect = undefined;
    }
  }

  private incoming(r: BodyReader): void {
    const seq = r.u48('seq');
    const flags = r.u8('flags');
    const hostSeq = flags & DELIVER_WITNESS ? r.u48('hostSeq') : 0;
    if (!this.intake) return;
    if (seq <= this.lastReceived) {
      this.counters.duplicatesIn++;
      return;
    }
    this.lastReceived = seq;
    let envelope: Envelope;
    try {
      envelope = decodeEventBody(r);
    } catch (error) {
      this.counters.decodeErrors++;
      this.options.logger.error(
        `ipc: cannot decode event seq ${seq} from the broker: ${describeError(error)}`,
      );
      const skipped = new IpcDelivery(undefined as unknown as Envelope, seq, this.epoch, this);
      this.unsettled.push(skipped);
      this.settled(skipped, { outcome: 'ack' });
      return;
    }
    if (hostSeq > 0) this.keepCopy(hostSeq, envelope);
    const delivery = new IpcDelivery(envelope, seq, this.epoch, this);
    this.unsettled.push(delivery);
    if (this.unsettled.length > this.counters.unsettledHighWater)
      this.counters.unsettledHighWater = this.unsettled.length;
    if (!this.firstTime(envelope.id)) {
      // A copy resent after a failover (by its poster or a witness) that this process already handled.
      this.counters.duplicateIdsDropped++;
      this.options.logger.debug?.(
        `ipc: dropped a resent copy of ${envelope.source}/${envelope.event} (id ${envelope.id}) already handled here`,
      );
      this.settled(delivery, { outcome: 'ack' });
      return;
    }
    this.counters.delivered++;
    this.options.deliver(delivery);
  }

  /** Records `id` as handled; false when it was handled already (bounded: oldest ids forgotten first). */
  private firstTime(id: string): boolean {
    if (this.handled.has(id)) return false;
    this.handled.add(id);
    this.handledOrder.push(id);
    if (this.handledOrder.length > HANDLED_IDS_CACHE_SIZE)
      this.handled.delete(this.handledOrder.shift()!);
    return true;
  }

  /** Keeps a copy of a post of the broker's process (a witness) until the broker releases it. */
  private keepCopy(hostSeq: number, envelope: Envelope): void {
    this.copies.push({ hostSeq, envelope });
    // Bounded: the broker's process has at most its queue bound plus a window of them outstanding.
    const limit = 2 * this.options.maxQueueLength + this.sendWindow;
    if (this.copies.length > limit) {
      const dropped = this.copies.shift()!;
      this.counters.witnessDropped++;
      this.limiter.warn(
        'witness-dropped',
        `ipc: more than ${limit} copies of the broker process's posts held; ${dropped.envelope.source}/${dropped.envelope.event} (id ${dropped.envelope.id}) would not be resent by this process after a failover`,
      );
    }
  }

  /** The bus settled a delivery: move the cumulative ack over every settled one in front. */
  settled(delivery: IpcDelivery, settlement: Settlement): void {
    if (delivery.done) return;
    delivery.done = true;
    if (delivery.envelope !== undefined) {
      if (settlement.outcome === 'ack') this.counters.acked++;
      else this.counters.nacked++;
    }
    if (delivery.epoch !== this.epoch) return;
    let moved = false;
    for (let head = this.unsettled.at(0); head?.done; head = this.unsettled.at(0)) {
      this.unsettled.shift();
      this.ackPoint = head.seq;
      moved = true;
    }
    if (moved) this.scheduleFlush();
  }

  /**
   * The old broker's copies died with it: what it had acknowledged but not
   * yet delivered to every worker goes in front of the pending frames, to be
   * sent again (their posts resolved already; some workers may see them twice).
   */
  private replayRetained(): void {
    if (this.retained.length === 0) return;
    const merged = new Ring<PendingFrame>(this.retained.length + this.pending.length);
    for (let frame = this.retained.shift(); frame; frame = this.retained.shift()) {
      frame.replay = frame.error === undefined;
      if (frame.replay) this.counters.replayed++;
      frame.sent = false;
      merged.push(frame);
    }
    for (let i = 0; i < this.pending.length; i++) merged.push(this.pending.at(i)!);
    this.pending = merged;
  }

  /** Keeps an acknowledged frame until the broker says it was delivered everywhere. */
  private retain(frame: PendingFrame): void {
    if (frame.seq <= this.deliveredSeq || frame.seq <= this.witnessedSeq) this.settleHeld(frame);
    if (frame.seq <= this.deliveredSeq) return;
    frame.replay = false;
    this.retained.push(frame);
    if (!frame.finished) this.armWitnessTimer();
    // Bounded: every retained frame is in some worker queue, each at most maxQueueLength long.
    const limit = this.options.maxQueueLength + this.sendWindow;
    if (this.retained.length > limit) {
      const dropped = this.retained.shift()!;
      this.settleHeld(dropped);
      this.counters.retainedDropped++;
      this.limiter.warn(
        'retained-dropped',
        `ipc: more than ${limit} acknowledged events not yet delivered everywhere; event seq ${dropped.seq} would not be resent after a broker failover (${this.counters.retainedDropped} so far)`,
      );
    }
    if (this.retained.length > this.counters.retainedHighWater)
      this.counters.retainedHighWater = this.retained.length;
  }

  private deliveredUpTo(seq: number): void {
    if (seq > this.deliveredSeq) this.deliveredSeq = seq;
    for (let head = this.retained.at(0); head && head.seq <= seq; head = this.retained.at(0)) {
      this.retained.shift();
      this.settleHeld(head);
    }
  }

  /** Resolves a post of the broker's own process held for a witness. */
  private settleHeld(frame: PendingFrame): void {
    if (!frame.finished) this.finish(frame, frame.error);
  }

  /** Another process keeps a copy of our posts up to `seq` (or they left every queue): they resolve. */
  private witnessedUpTo(seq: number): void {
    if (seq <= this.witnessedSeq) return;
    const from = this.witnessedSeq + 1;
    this.witnessedSeq = seq;
    const head = this.retained.at(0);
    if (!head) return;
    for (let s = Math.max(from, head.seq); s <= seq; s++) {
      const frame = this.retained.at(s - head.seq);
      if (frame) this.settleHeld(frame);
    }
  }

  /**
   * Bounded wait for a witness: no other process connected (or all of them
   * stalled) for postTimeoutMs, the post resolves anyway, counted and said.
   */
  private armWitnessTimer(): void {
    if (this.witnessTimer) return;
    const oldest = this.oldestHeld();
    if (!oldest) return;
    const wait = Math.max(0, oldest.ackedAt + this.options.postTimeoutMs - Date.now());
    this.witnessTimer = setTimeout(() => {
      this.witnessTimer = undefined;
      const now = Date.now();
      for (let frame = this.oldestHeld(); frame; frame = this.oldestHeld()) {
        if (frame.ackedAt + this.options.postTimeoutMs > now) break;
        this.counters.unwitnessedResolved++;
        this.limiter.warn(
          'unwitnessed',
          `ipc: post seq ${frame.seq} of the broker's own process resolved without another process keeping a copy within ${this.options.postTimeoutMs} ms (no other worker acknowledged it); it would not survive this process's death (${this.counters.unwitnessedResolved} so far)`,
        );
        this.settleHeld(frame);
      }
      this.armWitnessTimer();
    }, wait + 1);
    this.witnessTimer.unref();
  }

  private oldestHeld(): PendingFrame | undefined {
    for (let i = 0; i < this.retained.length; i++) {
      const frame = this.retained.at(i)!;
      if (!frame.finished) return frame;
    }
    return undefined;
  }

  private find(seq: number): PendingFrame | undefined {
    // Pending seqs are consecutive, so the index is a subtraction.
    const head = this.pending.at(0);
    if (!head) return undefined;
    const frame = this.pending.at(seq - head.seq);
    return frame?.seq === seq ? frame : undefined;
  }

  private ackedUpTo(seq: number): void {
    if (seq > this.ackedSeq) this.ackedSeq = seq;
    for (let head = this.pending.at(0); head && head.seq <= seq; head = this.pending.at(0)) {
      this.pending.shift();
      if (head.sent) this.unackedSent--;
      head.ackedAt = Date.now();
      // The broker's own process: its copy of the event dies with it, so its post resolves only once
      // another process keeps one (WITNESSED) or it left every queue (DELIVERED).
      if (!head.finished && !(this.hosting && !head.error)) this.finish(head, head.error);
      this.retain(head);
    }
    this.admit();
  }

  /**
   * Writes pending frames, in order, while fewer than the broker's window
   * are unacknowledged. Consecutive frames of one encoded chunk leave as
   * one slice.
   */
  private sendMore(): void {
    const head = this.pending.at(0);
    if (!head || !this.connected) return;
    let runChunk: Buffer | undefined;
    let runStart = 0;
    let runEnd = 0;
    // Expired frames never sent are skipped: the broker accepts gaps in a sender's sequence.
    while (this.sentUpTo < this.outSeq && this.unackedSent < this.sendWindow) {
      const frame = this.pending.at(this.sentUpTo + 1 - head.seq);
      this.sentUpTo++;
      if (!frame || (frame.finished && !frame.replay)) continue;
      frame.sent = true;
      this.unackedSent++;
      if (this.resending) this.counters.resent++;
      if (frame.chunk === runChunk && frame.start === runEnd) {
        runEnd = frame.end;
        continue;
      }
      if (runChunk) this.out.push(runChunk.subarray(runStart, runEnd));
      runChunk = frame.chunk;
      runStart = frame.start;
      runEnd = frame.end;
    }
    if (runChunk) {
      this.out.push(runChunk.subarray(runStart, runEnd));
      this.scheduleFlush();
    }
    this.armExpiry();
  }

  /** Fails frames that could not be sent within postTimeoutMs (the broker's window stayed full). */
  private armExpiry(): void {
    if (this.expiryTimer || !this.connected) return;
    // The first unsent frame whose post still waits (replayed frames resolved long ago).
    const head = this.pending.at(0);
    let next: PendingBatch | undefined;
    for (let i = head ? this.sentUpTo + 1 - head.seq : 0; head && i < this.pending.length; i++) {
      const frame = this.pending.at(i)!;
      if (!frame.finished) {
        next = frame.batch;
        break;
      }
    }
    next ??= this.waiting.at(0)?.state;
    if (!next) return;
    const wait = Math.max(0, next.deadline - Date.now());
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      this.expireUnsent();
    }, wait + 1);
  }

  private expireUnsent(): void {
    if (!this.connected) return;
    const now = Date.now();
    const full = (): QueueFullError =>
      new QueueFullError('ipc outgoing (a connected worker is slow)', this.sendWindow);
    const head = this.pending.at(0);
    let expired = true;
    if (head) {
      for (let i = this.sentUpTo + 1 - head.seq; i < this.pending.length; i++) {
        const frame = this.pending.at(i)!;
        if (frame.finished) continue;
        if (frame.batch.deadline > now) {
          expired = false;
          break;
        }
        if (!frame.finished) {
          this.counters.rejected++;
          this.finish(frame, full());
        }
      }
    }
    for (
      let entry = this.waiting.at(0);
      expired && entry && entry.state.deadline <= now;
      entry = this.waiting.at(0)
    ) {
      this.waiting.shift();
      this.waitingCount -= entry.envelopes.length - entry.next;
      for (let i = entry.next; i < entry.envelopes.length; i++) {
        this.counters.rejected++;
        this.complete(entry.state, i, full());
      }
    }
    this.armExpiry();
  }

  private finish(frame: PendingFrame, error: Error | undefined): void {
    frame.finished = true;
    if (error) frame.error = error;
    this.complete(frame.batch, frame.index, error);
  }

  private complete(batch: PendingBatch, index: number, error: Error | undefined): void {
    if (error) batch.results[index] = { ok: false, error };
    this.unfinished--;
    if (--batch.remaining === 0) batch.resolve(batch.results);
    if (this.unfinished === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter();
    }
  }

  /** Queues a batch for sending; resolves with one result per envelope once the broker answered each. */
  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (this.closed) {
      const error = new TransportClosedError();
      return Promise.resolve(batch.map(() => ({ ok: false, error })));
    }
    if (batch.length === 0) return Promise.resolve([]);
    // Bounded: what does not fit among the posts not yet answered fails now, counted.
    const limit = this.waitingLimit;
    const take = Math.min(batch.length, Math.max(0, limit - this.unfinished));
    const results = new Array<PublishResult>(batch.length);
    if (take < batch.length) {
      const error = new QueueFullError('ipc posts waiting to be sent', limit);
      for (let i = take; i < batch.length; i++) results[i] = { ok: false, error };
      this.counters.rejected += batch.length - take;
      if (take === 0) return Promise.resolve(results);
    }
    this.waitingCount += take;
    if (this.waitingCount > this.counters.waitingHighWater)
      this.counters.waitingHighWater = this.waitingCount;
    return new Promise(resolve => {
      const state: PendingBatch = {
        results,
        remaining: take,
        resolve,
        deadline: Date.now() + this.options.postTimeoutMs,
      };
      this.unfinished += take;
      this.waiting.push({
        envelopes: take < batch.length ? batch.slice(0, take) : batch,
        state,
        next: 0,
      });
      this.admit();
    });
  }

  /** Posts that may be unanswered (sent or waiting behind a full window) before new ones fail at once. */
  private get waitingLimit(): number {
    return Math.max(MAX_UNANSWERED_POSTS, 4 * (this.options.maxQueueLength + this.sendWindow));
  }

  /**
   * Encodes waiting posts into frames while fewer than the broker's window
   * plus maxQueueLength are unacknowledged; the rest wait (up to
   * postTimeoutMs) un-encoded. One chunk per call, sliced per frame.
   */
  private admit(): void {
    const ceiling = this.sendWindow + this.options.maxQueueLength;
    const w = this.encoder;
    const frames: PendingFrame[] = [];
    while (this.waiting.length > 0 && this.pending.length + frames.length < ceiling) {
      const entry = this.waiting.at(0)!;
      const i = entry.next++;
      this.waitingCount--;
      if (entry.next >= entry.envelopes.length) this.waiting.shift();
      const state = entry.state;
      const mark = w.length;
      const seq = this.outSeq + 1;
      let size: number;
      try {
        w.begin(FrameType.Event);
        w.u48(seq);
        encodeEventBody(w, entry.envelopes[i]);
        size = w.end();
      } catch (error) {
        w.truncate(mark);
        this.complete(state, i, error as Error);
        continue;
      }
      if (size - 4 > this.maxFrameBytes) {
        w.truncate(mark);
        this.complete(state, i, new PayloadTooLargeError(size - 4, this.maxFrameBytes));
        continue;
      }
      this.outSeq = seq;
      state.results[i] = ACCEPTED;
      frames.push({
        seq,
        chunk: EMPTY,
        start: mark,
        end: mark + size,
        batch: state,
        index: i,
        finished: false,
        sent: false,
        replay: false,
        ackedAt: 0,
      });
    }
    if (frames.length > 0) {
      const chunk = w.take();
      for (const frame of frames) {
        frame.chunk = chunk;
        this.pending.push(frame);
      }
      this.counters.published += frames.length;
      if (this.pending.length > this.counters.pendingHighWater)
        this.counters.pendingHighWater = this.pending.length;
    }
    this.sendMore();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const socket = this.socket;
    if (!this.connected || !socket) {
      this.out.length = 0;
      return;
    }
    if (this.ackPoint !== this.ackSent && this.ackPoint > 0) {
      const w = this.control;
      w.begin(FrameType.Ack);
      w.u48(this.ackPoint);
      w.end();
      this.out.push(w.take());
      this.ackSent = this.ackPoint;
    }
    if (this.out.length === 0) return;
    if (this.out.length === 1) {
      socket.write(this.out[0]);
    } else {
      socket.cork();
      for (const chunk of this.out) socket.write(chunk);
      socket.uncork();
    }
    this.out.length = 0;
  }

  private onClose(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.reader.push(Buffer.alloc(0));
    this.reader.buf = Buffer.alloc(0);
    const wasConnected = this.connected;
    this.connected = false;
    this.out.length = 0;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (this.closed) return;
    if (wasConnected) {
      this.counters.reconnects++;
      this.options.status('disconnected', 'connection to the broker closed');
      this.options.status('reconnecting');
    }
    this.retry('connection closed');
  }

  /** Stops handing events to the bus; undelivered ones stay with the broker for this worker id. */
  stopIntake(): void {
    this.intake = false;
  }

  /** Unacknowledged posts in flight. */
  get inFlight(): number {
    return this.unfinished;
  }

  /**
   * Waits (at most `timeoutMs`) for the broker to acknowledge every post,
   * also through a reconnect or a failover in between, then closes.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    if (this.unfinished > 0 && this.everConnected) {
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, timeoutMs);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.closed = true;
    this.connected = false;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.witnessTimer) clearTimeout(this.witnessTimer);
    if (this.firstConnect) {
      this.firstConnect.reject(new TransportClosedError('closed before connecting'));
      this.firstConnect = undefined;
    }
    this.flush();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      await new Promise<void>(resolve => {
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => socket.destroy(), 200).unref();
      });
    }
    const error = new TransportClosedError(
      'transport closed before the broker acknowledged this event',
    );
    for (let frame = this.pending.shift(); frame; frame = this.pending.shift()) {
      if (!frame.finished) this.finish(frame, error);
    }
    for (let entry = this.waiting.shift(); entry; entry = this.waiting.shift()) {
      for (let i = entry.next; i < entry.envelopes.length; i++)
        this.complete(entry.state, i, error);
    }
    this.waitingCount = 0;
    for (let frame = this.retained.shift(); frame; frame = this.retained.shift())
      if (!frame.finished) this.finish(frame, error);
    this.limiter.flush();
  }
}
