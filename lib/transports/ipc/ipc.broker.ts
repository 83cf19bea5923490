import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { systemClock, type Clock } from '../../bus/clock.js';
import { QueueFullError } from '../../bus/errors.js';
import { jsonCodec } from '../../bus/json.codec.js';
import { consoleLogger, type HeraldLogger } from '../../bus/logger.interface.js';
import { UniqueCache } from '../../bus/unique-cache.js';
import { describeEventBody, encodeEventBody, scanEventBody, type BodyScan } from './ipc.codec.js';
import {
  FrameType,
  IPC_MAGIC,
  IPC_PROTOCOL_VERSION,
  MAX_HELLO_BYTES,
  METADATA_ALLOWANCE_BYTES,
} from './ipc.constants.js';
import { IpcProtocolError } from './ipc.errors.js';
import { BodyReader, FrameReader, FrameWriter } from './ipc.frame.js';
import {
  resolveIpcBrokerOptions,
  type IpcBrokerOptions,
  type ResolvedIpcBrokerOptions,
} from './ipc.options.js';
import { Ring } from './ipc.ring.js';
import { prepareSocketPath, secureSocket } from './ipc.socket.js';

/** One worker id's state, kept across its connections and its process restarts. */
interface WorkerSlot {
  readonly id: number;
  /** Event bodies not yet acknowledged by the worker; entry i has seq `headSeq + i`. */
  readonly queue: Ring<Buffer>;
  headSeq: number;
  /** Highest seq written to the current connection. */
  sentSeq: number;
  connection?: BrokerConnection;
  /** The worker process (client session) last seen with this id. */
  session?: string;
  /** Highest seq accepted from that session: resends at or below it are dropped. */
  lastSeqIn: number;
  /**
   * Seqs of that session rejected (queue full) and perhaps not yet known to
   * it: told again on reconnect, so a lost REJECT never turns into a success.
   */
  readonly rejected: Ring<number>;
  highWater: number;
}

/** An event waiting at the broker for room in a connected worker's queue. */
interface Waiting {
  readonly seq: number;
  readonly body: Buffer;
  readonly unique: string | undefined;
  readonly deadline: number;
}

class BrokerConnection {
  readonly reader: FrameReader;
  readonly writer = new FrameWriter();
  slot?: WorkerSlot;
  pid = 0;
  window = 0;
  postTimeoutMs = 0;
  /** Highest seq of this client processed (accepted, dropped as duplicate, or rejected) and not yet acked. */
  ackDue = 0;
  ackSent = 0;
  /** When the latest bytes arrived; a waiting event times out postTimeoutMs after it. */
  chunkAt = 0;
  /** Events that found a connected worker's queue full, in arrival order (at most the client's send window). */
  readonly backlog = new Ring<Waiting>();
  holdTimer?: NodeJS.Timeout;
  closing = false;
  currentSeq = 0;

  constructor(
    readonly socket: net.Socket,
    readonly id: number,
  ) {
    this.reader = new FrameReader(MAX_HELLO_BYTES);
  }

  describe(): string {
    return this.slot ? `worker #${this.slot.id} (pid ${this.pid})` : `connection ${this.id}`;
  }
}

/** Events an {@link IpcBroker} emits. @publicApi */
export interface IpcBrokerEvents {
  listening: [socketPath: string];
  connected: [workerId: number, pid: number];
  disconnected: [workerId: number, reason: string];
  /** A frame was refused and its connection closed. */
  refused: [reason: string, workerId: number | undefined];
  error: [error: Error];
  closed: [];
}

/** Counters of {@link IpcBroker.stats}. @publicApi */
export interface IpcBrokerStats {
  readonly [name: string]: number;
  readonly connections: number;
  readonly workersConnected: number;
  /** Events accepted from posters. */
  readonly posted: number;
  /** Resent frames dropped because they were already accepted (origin + sequence). */
  readonly duplicates: number;
  /** Unique events dropped as repeats within the TTL. */
  readonly uniqueDropped: number;
  /** Event frames written to workers. */
  readonly delivered: number;
  /** Events dropped from the full queue of a worker that was not connected. */
  readonly dropped: number;
  /** Posts refused with a queue-full rejection after postTimeoutMs. */
  readonly rejected: number;
  readonly refusedFrames: number;
  readonly queued: number;
  readonly queueHighWater: number;
}

/**
 * The broker: one per host and app, on a unix socket. It keeps one queue
 * per worker id (not per connection, so events wait for a worker that
 * starts late or restarts), numbers what it sends to each worker, accepts
 * each poster's frames in sequence once (dropping resends), and puts every
 * event into every worker's queue at once, so all workers see one order.
 * A connected worker whose queue is full holds posters back (their posts
 * wait, then reject); a disconnected worker's full queue drops its oldest.
 * @publicApi
 */
export class IpcBroker extends EventEmitter<IpcBrokerEvents> {
  readonly options: ResolvedIpcBrokerOptions;
  /** Changes with every broker life, so clients know their numbering restarted. */
  readonly session = randomUUID().slice(0, 8);
  private readonly logger: HeraldLogger;
  private readonly clock: Clock;
  private readonly unique: UniqueCache;
  private readonly slots: WorkerSlot[] = [];
  private readonly connections = new Set<BrokerConnection>();
  private readonly dirty = new Set<BrokerConnection>();
  private readonly blocked = new Set<BrokerConnection>();
  private readonly body = new BodyReader();
  private readonly scan: BodyScan = { unique: undefined, payloadBytes: 0 };
  private readonly maxFrameBytes: number;
  private server?: net.Server;
  private flushScheduled = false;
  private retryScheduled = false;
  private nextConnectionId = 1;
  private closed = false;
  private readonly counters = {
    posted: 0,
    duplicates: 0,
    uniqueDropped: 0,
    delivered: 0,
    dropped: 0,
    rejected: 0,
    refusedFrames: 0,
  };

  constructor(options: IpcBrokerOptions = {}, deps: { logger?: HeraldLogger; clock?: Clock } = {}) {
    super();
    this.options = resolveIpcBrokerOptions(options);
    this.logger = deps.logger ?? consoleLogger;
    this.clock = deps.clock ?? systemClock;
    this.unique = new UniqueCache(this.options.unique, this.clock);
    this.maxFrameBytes = this.options.maxPayloadBytes + METADATA_ALLOWANCE_BYTES;
    for (let id = 0; id < this.options.workerCount; id++) {
      this.slots.push({
        id,
        queue: new Ring<Buffer>(),
        headSeq: 1,
        sentSeq: 0,
        lastSeqIn: 0,
        rejected: new Ring<number>(),
        highWater: 0,
      });
    }
    // Every error is logged where it happens; without this listener an 'error'
    // event nobody subscribed to would also crash the process hosting the broker.
    this.on('error', () => undefined);
  }

  get socketPath(): string {
    return this.options.socketPath;
  }

  /** Ids of the workers connected now. */
  get connectedWorkers(): number[] {
    return this.slots.filter(slot => slot.connection).map(slot => slot.id);
  }

  /** Binds the socket (after the directory and stale-socket checks); resolves when listening. */
  async listen(): Promise<void> {
    if (this.server) throw new Error('broker is already listening');
    const socketPath = this.options.socketPath;
    await prepareSocketPath(socketPath);
    const server = net.createServer(socket => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', error => {
      this.logger.error(`ipc broker on ${socketPath}: ${error.message}`);
      this.emit('error', error);
    });
    await secureSocket(socketPath);
    this.emit('listening', socketPath);
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const c = new BrokerConnection(socket, this.nextConnectionId++);
    this.connections.add(c);
    socket.on('data', chunk => this.onData(c, chunk));
    socket.on('error', error =>
      this.logger.debug?.(`ipc broker: ${c.describe()}: ${error.message}`),
    );
    socket.on('close', () => this.onClose(c));
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
      this.refuse(c, c.currentSeq, error instanceof Error ? error.message : String(error));
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
        const body = Buffer.from(reader.buf.subarray(bodyStart, reader.end));
        if (c.backlog.length === 0 && this.place(c, seq, body, scan.unique)) return;
        if (c.backlog.length >= c.window) {
          throw new IpcProtocolError(
            `more than ${c.window} events sent without waiting for acknowledgement`,
          );
        }
        c.backlog.push({ seq, body, unique: scan.unique, deadline: c.chunkAt + c.postTimeoutMs });
        this.blocked.add(c);
        this.armHoldTimer(c);
        return;
      }
      case FrameType.Ack: {
        const seq = r.u48('seq');
        r.done('ack');
        this.acked(c, c.slot!, seq);
        return;
      }
      default:
        throw new IpcProtocolError(`unexpected frame type ${reader.type}`);
    }
  }

  private hello(c: BrokerConnection, r: BodyReader): void {
    if (c.slot) throw new IpcProtocolError('a second HELLO');
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
    // The client's receive window; its send window is our maxQueueLength (sent in WELCOME).
    const postTimeoutMs = r.u32('postTimeoutMs');
    const session = r.str('session');
    r.done('hello');
    if (workerId < 0 || workerId >= this.slots.length) {
      throw new IpcProtocolError(
        `worker id ${workerId} is outside 0..${this.slots.length - 1} (workerCount ${this.slots.length})`,
      );
    }
    if (window < 1) throw new IpcProtocolError('window must be >= 1');
    const slot = this.slots[workerId];
    const previous = slot.connection;
    c.slot = slot;
    c.pid = pid;
    c.window = Math.min(window, this.options.maxQueueLength);
    c.postTimeoutMs = postTimeoutMs;
    c.reader.maxFrameBytes = this.maxFrameBytes;
    slot.connection = c;
    if (previous && previous !== c) {
      this.logger.warn(
        `ipc broker: worker #${workerId} connected again (pid ${pid}); closing its previous connection`,
      );
      this.detach(previous, 'replaced by a new connection');
      previous.closing = true;
      previous.socket.destroy();
    }
    const last = slot.headSeq + slot.queue.length - 1;
    if (session !== slot.session) {
      // A new process with this id: everything still queued is for it.
      slot.session = session;
      slot.lastSeqIn = 0;
      slot.sentSeq = slot.headSeq - 1;
      while (slot.rejected.length > 0) slot.rejected.shift();
    } else {
      // The same process reconnecting: what it already received waits for its ack.
      slot.sentSeq = Math.max(slot.headSeq - 1, Math.min(lastReceived, last));
    }
    const w = c.writer;
    // Rejections it may have missed (the connection dropped before our ack reached it), before WELCOME.
    while ((slot.rejected.at(0) ?? Infinity) <= ackedSeq) slot.rejected.shift();
    for (let i = 0; i < slot.rejected.length; i++) this.writeReject(c, slot.rejected.at(i)!);
    w.begin(FrameType.Welcome);
    w.u8(IPC_PROTOCOL_VERSION);
    w.u48(slot.lastSeqIn);
    w.u32(this.maxFrameBytes);
    w.u32(this.slots.length);
    w.u32(this.options.maxQueueLength);
    w.str(this.session);
    w.end();
    c.ackSent = c.ackDue = slot.lastSeqIn;
    this.pump(slot);
    this.markDirty(c);
    this.logger.debug?.(`ipc broker: worker #${workerId} connected (pid ${pid})`);
    this.emit('connected', workerId, pid);
  }

  /**
   * Accepts an event into the queues, or drops it as a resend or a unique
   * repeat. @returns false when a connected worker's queue has no room.
   */
  private place(
    c: BrokerConnection,
    seq: number,
    body: Buffer,
    unique: string | undefined,
  ): boolean {
    const slot = c.slot!;
    if (seq <= slot.lastSeqIn) {
      this.counters.duplicates++;
      return true;
    }
    if (unique !== undefined) {
      const target = this.uniqueTarget();
      if (!target) return false;
      if (!this.unique.claim(unique)) {
        this.counters.uniqueDropped++;
        this.logger.debug?.(`ipc broker: unique event is duplicate: ${unique}`);
      } else {
        this.enqueue(target, body);
      }
    } else {
      for (const other of this.slots) {
        if (other.connection && other.queue.length >= this.options.maxQueueLength) return false;
      }
      for (const other of this.slots) this.enqueue(other, body);
    }
    this.counters.posted++;
    this.processed(c, slot, seq);
    return true;
  }

  private processed(c: BrokerConnection, slot: WorkerSlot, seq: number): void {
    slot.lastSeqIn = seq;
    c.ackDue = seq;
    this.markDirty(c);
  }

  /** Rejects a waiting event whose poster's postTimeoutMs passed: never delivered, its post fails. */
  private reject(c: BrokerConnection, seq: number): void {
    this.counters.rejected++;
    const slot = c.slot!;
    slot.rejected.push(seq);
    // Bounded: the client has at most a window of posts unacknowledged.
    while (slot.rejected.length > this.options.maxQueueLength) slot.rejected.shift();
    this.writeReject(c, seq);
    this.processed(c, slot, seq);
  }

  private writeReject(c: BrokerConnection, seq: number): void {
    const w = c.writer;
    w.begin(FrameType.Reject);
    w.u48(seq);
    w.str(`a connected worker's queue is full (limit ${this.options.maxQueueLength})`);
    w.end();
  }

  /** Places what waits, in order; rejects what waited past its deadline. */
  private drainBacklog(c: BrokerConnection): void {
    if (c.closing || !c.slot) return;
    const now = this.clock.now();
    for (let head = c.backlog.at(0); head; head = c.backlog.at(0)) {
      if (this.place(c, head.seq, head.body, head.unique)) {
        c.backlog.shift();
      } else if (now >= head.deadline) {
        c.backlog.shift();
        this.reject(c, head.seq);
      } else {
        this.armHoldTimer(c);
        return;
      }
    }
    this.blocked.delete(c);
    if (c.holdTimer) clearTimeout(c.holdTimer);
    c.holdTimer = undefined;
  }

  private armHoldTimer(c: BrokerConnection): void {
    const head = c.backlog.at(0);
    if (!head || c.holdTimer) return;
    const wait = Math.max(0, head.deadline - this.clock.now());
    c.holdTimer = setTimeout(() => {
      c.holdTimer = undefined;
      this.drainBacklog(c);
    }, wait + 1);
  }

  /** A connected worker with room, picked at random (the original picks a random worker). */
  private uniqueTarget(): WorkerSlot | undefined {
    let candidates = 0;
    let picked: WorkerSlot | undefined;
    for (const slot of this.slots) {
      if (!slot.connection || slot.queue.length >= this.options.maxQueueLength) continue;
      candidates++;
      if (Math.random() * candidates < 1) picked = slot;
    }
    return picked;
  }

  private enqueue(slot: WorkerSlot, body: Buffer): void {
    if (slot.queue.length >= this.options.maxQueueLength) {
      const oldest = slot.queue.shift()!;
      slot.headSeq++;
      if (slot.sentSeq < slot.headSeq - 1) slot.sentSeq = slot.headSeq - 1;
      this.counters.dropped++;
      this.logger.warn(
        `ipc broker: queue of worker #${slot.id} is full (${this.options.maxQueueLength}) while it is not connected; dropped its oldest event ${describeEventBody(oldest)}`,
      );
    }
    slot.queue.push(body);
    if (slot.queue.length > slot.highWater) slot.highWater = slot.queue.length;
    if (slot.connection) this.pump(slot);
  }

  /** Writes queued events to the worker's connection, up to its window of unacknowledged ones. */
  private pump(slot: WorkerSlot): void {
    const c = slot.connection;
    if (!c || c.closing) return;
    const last = slot.headSeq + slot.queue.length - 1;
    const limit = Math.min(last, slot.headSeq - 1 + c.window);
    if (slot.sentSeq >= limit) return;
    const w = c.writer;
    while (slot.sentSeq < limit) {
      const seq = slot.sentSeq + 1;
      const body = slot.queue.at(seq - slot.headSeq)!;
      w.begin(FrameType.Deliver);
      w.u48(seq);
      w.bytes(body);
      w.end();
      slot.sentSeq = seq;
      this.counters.delivered++;
    }
    this.markDirty(c);
  }

  private acked(c: BrokerConnection, slot: WorkerSlot, seq: number): void {
    if (seq > slot.sentSeq)
      throw new IpcProtocolError(`ack of seq ${seq}, beyond the last sent (${slot.sentSeq})`);
    let freed = false;
    while (slot.headSeq <= seq && slot.queue.length > 0) {
      slot.queue.shift();
      slot.headSeq++;
      freed = true;
    }
    if (freed) {
      this.pump(slot);
      this.retryBlocked();
    }
  }

  /** Room was made (an ack, a disconnect): held posters try again, in the order they were held. */
  private retryBlocked(): void {
    if (this.blocked.size === 0 || this.retryScheduled) return;
    this.retryScheduled = true;
    queueMicrotask(() => {
      this.retryScheduled = false;
      for (const c of [...this.blocked]) this.drainBacklog(c);
    });
  }

  private markDirty(c: BrokerConnection): void {
    this.dirty.add(c);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate runs after this turn's I/O: every socket read in it shares one write per connection.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const c of this.dirty) {
      if (c.closing) continue;
      if (c.ackDue > c.ackSent) {
        c.writer.begin(FrameType.Ack);
        c.writer.u48(c.ackDue);
        c.writer.end();
        c.ackSent = c.ackDue;
      }
      if (c.writer.length > 0) c.socket.write(c.writer.take());
    }
    this.dirty.clear();
  }

  /** Logs and counts a refused frame, tells the client which, and closes its connection. */
  private refuse(c: BrokerConnection, seq: number, reason: string): void {
    if (c.closing) return;
    this.counters.refusedFrames++;
    this.logger.warn(
      `ipc broker refused a frame from ${c.describe()}: ${reason}; closing the connection`,
    );
    this.flushOne(c);
    c.writer.begin(FrameType.Refuse);
    c.writer.u48(seq);
    c.writer.str(reason);
    c.writer.end();
    c.closing = true;
    c.socket.end(c.writer.take());
    setTimeout(() => c.socket.destroy(), 1000).unref();
    this.detach(c, `refused: ${reason}`);
    this.emit('refused', reason, c.slot?.id);
  }

  private flushOne(c: BrokerConnection): void {
    if (c.ackDue > c.ackSent) {
      c.writer.begin(FrameType.Ack);
      c.writer.u48(c.ackDue);
      c.writer.end();
      c.ackSent = c.ackDue;
    }
  }

  /** Unbinds a connection from its worker slot: what was sent and not acked will be sent again. */
  private detach(c: BrokerConnection, reason: string): void {
    this.blocked.delete(c);
    if (c.holdTimer) clearTimeout(c.holdTimer);
    c.holdTimer = undefined;
    const slot = c.slot;
    if (!slot || slot.connection !== c) return;
    slot.connection = undefined;
    slot.sentSeq = slot.headSeq - 1;
    this.logger.debug?.(`ipc broker: worker #${slot.id} disconnected (${reason})`);
    this.emit('disconnected', slot.id, reason);
    // Its queue now drops oldest instead of holding posters back.
    this.retryBlocked();
  }

  private onClose(c: BrokerConnection): void {
    this.connections.delete(c);
    this.dirty.delete(c);
    c.closing = true;
    this.detach(c, 'connection closed');
  }

  /**
   * Posts an event from the broker itself (e.g. "all workers connected") to
   * every worker. Throws `QueueFullError`, sending nothing, when a connected
   * worker's queue is full.
   */
  post(source: string, event: string, data?: unknown): string {
    for (const slot of this.slots) {
      if (slot.connection && slot.queue.length >= this.options.maxQueueLength) {
        throw new QueueFullError(`worker #${slot.id}`, this.options.maxQueueLength);
      }
    }
    const id = randomUUID();
    const w = new FrameWriter();
    encodeEventBody(w, {
      id,
      source,
      event,
      payload: jsonCodec.encode(data),
      origin: `broker/${process.pid}/${this.session}`,
      occurredAt: new Date(this.clock.now()).toISOString(),
    });
    const body = w.take();
    this.counters.posted++;
    for (const slot of this.slots) this.enqueue(slot, body);
    return id;
  }

  stats(): IpcBrokerStats {
    let queued = 0;
    let queueHighWater = 0;
    for (const slot of this.slots) {
      queued += slot.queue.length;
      if (slot.highWater > queueHighWater) queueHighWater = slot.highWater;
    }
    return {
      connections: this.connections.size,
      workersConnected: this.connectedWorkers.length,
      ...this.counters,
      queued,
      queueHighWater,
    };
  }

  /** The high-water mark of each worker's queue, by worker id. */
  queueHighWaters(): number[] {
    return this.slots.map(slot => slot.highWater);
  }

  /** Flushes pending writes, closes every connection and the socket, and removes the socket file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    for (const c of this.blocked) if (c.holdTimer) clearTimeout(c.holdTimer);
    this.blocked.clear();
    const server = this.server;
    for (const c of this.connections) {
      c.closing = true;
      c.socket.end();
      setTimeout(() => c.socket.destroy(), 200).unref();
    }
    if (server) {
      await new Promise<void>(resolve => server.close(() => resolve()));
      await fs.unlink(this.options.socketPath).catch(() => undefined);
    }
    this.emit('closed');
  }
}
