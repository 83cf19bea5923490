import { randomUUID } from 'node:crypto';
import { describeError } from '../../common/describe-error.js';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { systemClock, type Clock } from '../../common/clock.js';
import { QueueFullError } from '../../common/errors.js';
import { jsonCodec } from '../../common/json.codec.js';
import { consoleLogger, type HeraldLogger } from '../../common/logger.js';
import { UniqueCache } from '../../common/unique-cache.js';
import type { EventHandler } from '../../interfaces/envelope.interface.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import { describeEventBody, encodeEventBody, scanEventBody, type BodyScan } from './ipc.codec.js';
import {
  DELIVER_WITNESS,
  FrameType,
  IPC_MAGIC,
  IPC_PROTOCOL_VERSION,
  MAX_HELLO_BYTES,
  METADATA_ALLOWANCE_BYTES,
  SEQ_BYTES,
  SESSIONS_PER_WORKER,
  WELCOME_HOST,
} from './ipc.constants.js';
import { IpcProtocolError } from './ipc.errors.js';
import { BodyReader, FrameReader, FrameWriter } from './ipc.frame.js';
import {
  resolveIpcBrokerOptions,
  type IpcBrokerOptions,
  type ResolvedIpcBrokerOptions,
} from './ipc.options.js';
import { BrokerLock } from './ipc.lock.js';
import { PrivilegedAgent } from './ipc.privileged.js';
import { Ring } from './ipc.ring.js';
import { ipcTestHooks, prepareSocketPath, secureSocket } from './ipc.socket.js';

/**
 * One accepted event of a poster, counted down as each worker queue it
 * went into lets go of it (acknowledged or dropped). When every record in
 * front is done, the poster is told (DELIVERED) and stops keeping the frame
 * for a resend to a next broker.
 */
interface PostRecord {
  readonly seq: number;
  refs: number;
  /** A worker other than the broker's own process acknowledged it (and keeps a copy): a broker-process post is safe. */
  witnessed: boolean;
}

/** A poster (worker id + client session) and its accepted events not yet delivered everywhere. */
interface Poster {
  readonly slotId: number;
  readonly session: string;
  readonly records: Ring<PostRecord>;
}

/** An event in a worker's queue; `record` is absent for the broker's own posts. */
interface QueueEntry {
  readonly body: Buffer;
  /** Placement number: the queues of worker ids seen before it count towards its record. */
  readonly placed: number;
  readonly record: PostRecord | undefined;
  readonly poster: Poster | undefined;
}

/** A worker id whose connections had this many frames refused within REFUSAL_WINDOW_MS is cut off. */
const MAX_REFUSALS = 5;
const REFUSAL_WINDOW_MS = 10_000;
/** How long a cut-off worker id's handshakes are refused. */
const CUT_OFF_MS = 30_000;

/** What the broker keeps per client session (process) of a worker id: never reset by a reconnect. */
interface SessionState {
  lastSeqIn: number;
  rejected: Ring<number>;
  poster: Poster;
}

/** One worker id's state, kept across its connections and its process restarts. */
interface WorkerSlot {
  readonly id: number;
  /** Events not yet acknowledged by the worker; entry i has seq `headSeq + i`. */
  readonly queue: Ring<QueueEntry>;
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
  rejected: Ring<number>;
  highWater: number;
  /** Earlier sessions of this worker id (their dedup state), at most SESSIONS_PER_WORKER. */
  readonly sessions: Map<string, SessionState>;
  /** The current session's poster record (for DELIVERED). */
  poster?: Poster;
  /**
   * Placements made before this worker id first connected to this broker
   * life; a queue counts towards delivery only for later ones, so a worker
   * that died for good (the previous broker's own process) holds nothing back.
   */
  seenAt?: number;
}

/** Recent refused frames of one client session (one worker process, across its reconnects). */
interface Offender {
  readonly times: number[];
  /** Its handshakes are refused until then. */
  until: number;
}

/** Requested accept queue length. */
const LISTEN_BACKLOG = 4096;

/** Sessions remembered for the cut-off, oldest forgotten first. */
const MAX_OFFENDERS = 1024;

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
  /** The client's session, once its HELLO was read. */
  session?: string;
  /** Highest seq of this poster delivered to every queue it went into, as last told. */
  deliveredSent = 0;
  /** When the latest bytes arrived; a waiting event times out postTimeoutMs after it. */
  chunkAt = 0;
  /** Events that found a connected worker's queue full, in arrival order (at most the client's send window). */
  readonly backlog = new Ring<Waiting>();
  holdTimer?: NodeJS.Timeout;
  /** Closes the connection when no HELLO came in time. */
  handshakeTimer?: NodeJS.Timeout;
  /** Highest broker-process seq told (WITNESSED to the host, RELEASED to the others). */
  witnessedSent = 0;
  releasedSent = 0;
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
  /** Events dropped from the full queue of a worker that was not connected (each logged with its source and event). */
  readonly dropped: number;
  /** Posts refused with a queue-full rejection after postTimeoutMs. */
  readonly rejected: number;
  readonly refusedFrames: number;
  /** Handshakes refused because the worker id kept sending refused frames. */
  readonly cutOff: number;
  /** HELLOs refused because another live process holds the worker id. */
  readonly identityConflicts: number;
  /** Connections closed because no HELLO came within handshakeTimeoutMs. */
  readonly handshakeTimeouts: number;
  /** Events still in a queue when the broker closed, with no copy left elsewhere (each logged). */
  readonly undeliverableAtClose: number;
  readonly queued: number;
  readonly queueHighWater: number;
  /** High-water mark of the events held back from posters (all connections). */
  readonly backlogHighWater: number;
  /** High-water mark of accepted events not yet delivered to every worker (all posters). */
  readonly undeliveredHighWater: number;
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
  private readonly limiter: WarningLimiter;
  private agent?: PrivilegedAgent;
  private readonly slots: WorkerSlot[] = [];
  private readonly connections = new Set<BrokerConnection>();
  private readonly dirty = new Set<BrokerConnection>();
  private readonly blocked = new Set<BrokerConnection>();
  private readonly body = new BodyReader();
  private readonly scan: BodyScan = { unique: undefined, payloadBytes: 0 };
  private readonly maxFrameBytes: number;
  private server?: net.Server;
  private lock?: BrokerLock;
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
    cutOff: 0,
    identityConflicts: 0,
    handshakeTimeouts: 0,
    undeliverableAtClose: 0,
    backlogHighWater: 0,
    undeliveredHighWater: 0,
  };
  private undelivered = 0;
  /**
   * The client session of the process hosting this broker (set by the
   * transport before `listen`): its posts are copied to witnesses, since
   * its own retained copies die with the broker. @internal
   */
  hostSession?: string;
  private hostSlot?: WorkerSlot;
  private readonly offenders = new Map<string, Offender>();
  private placements = 0;

  constructor(options: IpcBrokerOptions = {}, deps: { logger?: HeraldLogger; clock?: Clock } = {}) {
    super();
    this.options = resolveIpcBrokerOptions(options);
    this.logger = deps.logger ?? consoleLogger;
    this.clock = deps.clock ?? systemClock;
    this.limiter = new WarningLimiter(this.logger, 10_000, this.clock);
    this.unique = new UniqueCache(this.options.unique, this.clock);
    this.maxFrameBytes = this.options.maxPayloadBytes + METADATA_ALLOWANCE_BYTES;
    if (this.options.privileged)
      this.agent = new PrivilegedAgent(this.options.maxQueueLength, this.logger, this.limiter);
    for (let id = 0; id < this.options.workerCount; id++) {
      this.slots.push({
        id,
        queue: new Ring<QueueEntry>(),
        headSeq: 1,
        sentSeq: 0,
        lastSeqIn: 0,
        rejected: new Ring<number>(),
        highWater: 0,
        sessions: new Map(),
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

  /**
   * Takes the broker lock (or uses the one given, already held), then binds
   * the socket after the directory and stale-socket checks; resolves when
   * listening. Throws `IpcSocketError` when another process holds the lock
   * or the checks fail; the lock is released again then.
   */
  async listen(lock?: BrokerLock): Promise<void> {
    if (this.server || this.lock) throw new Error('broker is already listening');
    const socketPath = this.options.socketPath;
    this.lock = lock ?? (await BrokerLock.acquire(socketPath));
    const server = net.createServer(socket => this.accept(socket));
    try {
      // Only the lock holder gets here: the probe, unlink and bind cannot race another broker.
      await prepareSocketPath(socketPath);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // A deep accept queue for connect bursts (the kernel caps it at somaxconn); clients retry EAGAIN.
        server.listen({ path: socketPath, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await this.lock.release();
      this.lock = undefined;
      throw error;
    }
    this.server = server;
    server.on('error', error => {
      this.logger.error(`ipc broker on ${socketPath}: ${error.message}`);
      this.emit('error', error);
    });
    await ipcTestHooks.afterBind?.(socketPath);
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
      `ipc broker: ${c.describe()} sent no HELLO within ${this.options.handshakeTimeoutMs} ms; closing it`,
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
        const body = Buffer.from(reader.buf.subarray(bodyStart, reader.end));
        if (c.backlog.length === 0 && this.place(c, seq, body, scan.unique)) return;
        if (c.backlog.length >= c.window) {
          throw new IpcProtocolError(
            `more than ${c.window} events sent without waiting for acknowledgement`,
          );
        }
        c.backlog.push({ seq, body, unique: scan.unique, deadline: c.chunkAt + c.postTimeoutMs });
        if (c.backlog.length > this.counters.backlogHighWater)
          this.counters.backlogHighWater = c.backlog.length;
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
    // Checked before it may replace anyone's connection.
    if ((this.offenders.get(session)?.until ?? 0) > this.clock.now()) {
      this.counters.cutOff++;
      throw new IpcProtocolError(
        `worker #${workerId} (session ${session}) is cut off: its connections sent ${MAX_REFUSALS} refused frames within ${REFUSAL_WINDOW_MS} ms`,
      );
    }
    const previous = slot.connection;
    if (previous && previous !== c && !previous.closing && previous.session !== session) {
      // Another live process holds this id: displacing it would hand its queue and dedup state to a stranger.
      this.counters.identityConflicts++;
      this.logger.error(
        `ipc broker: refused a HELLO for worker #${workerId} from pid ${pid} (session ${session}): worker #${workerId} is connected from pid ${previous.pid} (session ${previous.session})`,
      );
      throw new IpcProtocolError(
        `worker id ${workerId} is in use by pid ${previous.pid} (another session)`,
      );
    }
    if (c.handshakeTimer) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = undefined;
    c.session = session;
    slot.seenAt ??= this.placements;
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
      // Another process with this id: everything still queued is for it. Its
      // dedup state is its session's own (restored when that session returns).
      this.switchSession(slot, session);
      slot.sentSeq = slot.headSeq - 1;
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
    const isHost = this.hostSession !== undefined && session === this.hostSession;
    if (isHost) this.hostSlot = slot;
    w.u8(isHost ? WELCOME_HOST : 0);
    w.end();
    c.ackSent = c.ackDue = slot.lastSeqIn;
    // Told again on every connection: the client may have missed the last one.
    c.deliveredSent = 0;
    c.witnessedSent = 0;
    c.releasedSent = 0;
    this.pump(slot);
    this.markDirty(c);
    this.logger.debug?.(`ipc broker: worker #${workerId} connected (pid ${pid})`);
    this.emit('connected', workerId, pid);
  }

  /** Saves the slot's current session state and loads (or creates) that of `session`. */
  private switchSession(slot: WorkerSlot, session: string): void {
    if (slot.session !== undefined && slot.poster) {
      slot.sessions.delete(slot.session);
      slot.sessions.set(slot.session, {
        lastSeqIn: slot.lastSeqIn,
        rejected: slot.rejected,
        poster: slot.poster,
      });
      if (slot.sessions.size > SESSIONS_PER_WORKER)
        slot.sessions.delete(slot.sessions.keys().next().value!);
    }
    const saved = slot.sessions.get(session);
    slot.sessions.delete(session);
    slot.session = session;
    slot.poster = saved?.poster ?? { slotId: slot.id, session, records: new Ring<PostRecord>() };
    slot.lastSeqIn = saved?.lastSeqIn ?? 0;
    slot.rejected = saved?.rejected ?? new Ring<number>();
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
        // Dropped on purpose (the key ran within the TTL): counted, and said with what it was.
        this.logger.debug?.(
          `ipc broker: dropped unique event ${describeEventBody(body)}: key '${unique}' already ran within ${this.options.unique.ttlMs} ms`,
        );
      } else {
        this.enqueue(target, this.entry(slot, seq, body, true, target));
      }
    } else {
      for (const other of this.slots) {
        if (other.connection && other.queue.length >= this.options.maxQueueLength) return false;
      }
      const entry = this.entry(slot, seq, body, false);
      for (const other of this.slots) this.enqueue(other, entry);
      this.agent?.push(body);
    }
    this.counters.posted++;
    this.processed(c, slot, seq);
    return true;
  }

  /** A queue entry whose record counts the queues (of worker ids seen so far) it goes into. */
  private entry(
    slot: WorkerSlot,
    seq: number,
    body: Buffer,
    unique: boolean,
    target?: WorkerSlot,
  ): QueueEntry {
    const placed = ++this.placements;
    const poster = slot.poster;
    if (!poster) return { body, placed, record: undefined, poster: undefined };
    // The broker's own process does not wait for itself: if it dies, its own delivery no longer matters.
    const fromHost = slot === this.hostSlot && poster.session === this.hostSession;
    let refs = 1;
    if (!unique) {
      refs = 0;
      for (const other of this.slots)
        if (other.seenAt !== undefined && !(fromHost && other === slot)) refs++;
    } else if (fromHost && target === slot) {
      refs = 0;
    }
    if (refs === 0) return { body, placed, record: undefined, poster: undefined };
    const record: PostRecord = { seq, refs, witnessed: false };
    poster.records.push(record);
    if (++this.undelivered > this.counters.undeliveredHighWater)
      this.counters.undeliveredHighWater = this.undelivered;
    return { body, placed, record, poster };
  }

  /**
   * A queue let go of an entry (acknowledged, or dropped when `acked` is
   * false): its poster may learn it was delivered everywhere; a post of the
   * broker's own process acknowledged by another worker has a witness.
   */
  private released(slot: WorkerSlot, entry: QueueEntry, acked: boolean): void {
    const record = entry.record;
    if (!record) return;
    const hostPost = this.isHostPost(entry);
    if (acked && hostPost && slot !== this.hostSlot && !record.witnessed) {
      record.witnessed = true;
      if (this.hostSlot?.connection) this.markDirty(this.hostSlot.connection);
    }
    if (slot.seenAt === undefined || slot.seenAt >= entry.placed) return;
    if (hostPost && slot === this.hostSlot) return;
    if (--record.refs > 0) return;
    this.undelivered--;
    const poster = entry.poster!;
    const records = poster.records;
    if (records.at(0) !== record) return;
    while (records.length > 0 && records.at(0)!.refs <= 0) records.shift();
    const owner = this.slots[poster.slotId];
    if (owner.poster === poster && owner.connection) this.markDirty(owner.connection);
    // Witnesses may drop their copies of the broker process's posts up to here.
    if (hostPost)
      for (const c of this.connections) if (c.slot && c.slot !== owner) this.markDirty(c);
  }

  /** Whether the entry was posted by the process hosting this broker (its current session). */
  private isHostPost(entry: QueueEntry): boolean {
    return this.hostSession !== undefined && entry.poster?.session === this.hostSession;
  }

  /** Highest seq of the broker process's posts each witnessed or delivered everywhere. */
  private witnessedSeq(): number {
    const slot = this.hostSlot;
    if (!slot || slot.session !== this.hostSession || !slot.poster) return 0;
    const records = slot.poster.records;
    for (let i = 0; i < records.length; i++) {
      const record = records.at(i)!;
      if (record.refs > 0 && !record.witnessed) return record.seq - 1;
    }
    return slot.lastSeqIn;
  }

  /** Highest seq of the slot's current poster delivered to every queue it went into. */
  private deliveredSeq(slot: WorkerSlot): number {
    const head = slot.poster?.records.at(0);
    return head ? head.seq - 1 : slot.lastSeqIn;
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

  private enqueue(slot: WorkerSlot, entry: QueueEntry): void {
    if (slot.queue.length >= this.options.maxQueueLength) {
      const oldest = slot.queue.shift()!;
      slot.headSeq++;
      if (slot.sentSeq < slot.headSeq - 1) slot.sentSeq = slot.headSeq - 1;
      this.counters.dropped++;
      this.limiter.warn(
        `queue-full-${slot.id}`,
        `ipc broker: queue of worker #${slot.id} is full (${this.options.maxQueueLength}) while it is not connected; dropped its oldest event ${describeEventBody(oldest.body)}`,
      );
      this.released(slot, oldest, false);
    }
    slot.queue.push(entry);
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
      const entry = slot.queue.at(seq - slot.headSeq)!;
      w.begin(FrameType.Deliver);
      w.u48(seq);
      if (slot !== this.hostSlot && this.isHostPost(entry)) {
        w.u8(DELIVER_WITNESS);
        w.u48(entry.record!.seq);
      } else {
        w.u8(0);
      }
      w.bytes(entry.body);
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
      this.released(slot, slot.queue.shift()!, true);
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
      this.writeDelivered(c);
      if (c.writer.length > 0) c.socket.write(c.writer.take());
    }
    this.dirty.clear();
  }

  /** After the ack: the poster may drop its copies (kept for a next broker) up to this seq. */
  private writeDelivered(c: BrokerConnection): void {
    const slot = c.slot;
    if (!slot || slot.connection !== c) return;
    const host = this.hostSlot;
    if (host && slot === host) {
      const witnessed = this.witnessedSeq();
      if (witnessed > c.witnessedSent) {
        c.writer.begin(FrameType.Witnessed);
        c.writer.u48(witnessed);
        c.writer.end();
        c.witnessedSent = witnessed;
      }
    } else if (host && host.session === this.hostSession) {
      const released = this.deliveredSeq(host);
      if (released > c.releasedSent) {
        c.writer.begin(FrameType.Released);
        c.writer.u48(released);
        c.writer.end();
        c.releasedSent = released;
      }
    }
    const delivered = this.deliveredSeq(slot);
    if (delivered <= c.deliveredSent) return;
    c.writer.begin(FrameType.Delivered);
    c.writer.u48(delivered);
    c.writer.end();
    c.deliveredSent = delivered;
  }

  /** Logs and counts a refused frame, tells the client which, and closes its connection. */
  private refuse(c: BrokerConnection, seq: number, reason: string): void {
    if (c.closing) return;
    this.counters.refusedFrames++;
    if (c.session !== undefined) this.offended(c, c.session);
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

  /**
   * A client (session) whose connections keep sending refused frames is cut
   * off for a while, not looped; a new process with the same worker id has
   * another session and is served.
   */
  private offended(c: BrokerConnection, session: string): void {
    const now = this.clock.now();
    let offender = this.offenders.get(session);
    if (!offender) {
      if (this.offenders.size >= MAX_OFFENDERS) {
        this.offenders.delete(this.offenders.keys().next().value!);
      }
      offender = { times: [], until: 0 };
      this.offenders.set(session, offender);
    }
    offender.times.push(now);
    while (offender.times.length > 0 && offender.times[0] <= now - REFUSAL_WINDOW_MS)
      offender.times.shift();
    if (offender.times.length >= MAX_REFUSALS) {
      offender.until = now + CUT_OFF_MS;
      offender.times.length = 0;
      this.logger.error(
        `ipc broker: ${c.describe()} (session ${session}) sent ${MAX_REFUSALS} refused frames within ${REFUSAL_WINDOW_MS} ms; refusing its connections for ${CUT_OFF_MS} ms`,
      );
    }
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
    if (c.handshakeTimer) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = undefined;
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
    const entry: QueueEntry = {
      body: w.take(),
      placed: ++this.placements,
      record: undefined,
      poster: undefined,
    };
    this.counters.posted++;
    for (const slot of this.slots) this.enqueue(slot, entry);
    this.agent?.push(entry.body);
    return id;
  }

  /**
   * Makes this process (e.g. the node:cluster primary) a privileged agent,
   * as lua-resty-events' `enable_privileged_agent`: outside the worker ids,
   * it receives every broadcast (not unique events, which run in one
   * worker) in the broker's order, its own posts included. Events wait in a
   * retained queue of its own (bounded by maxQueueLength, oldest dropped,
   * counted and logged) from the first `register` call on, until a handler
   * takes them; handlers run one event at a time, their errors logged and
   * counted. `source` and each of `events` may be `'*'`.
   * @returns a function that removes this handler.
   */
  register(handler: EventHandler, source = '*', ...events: string[]): () => void {
    this.agent ??= new PrivilegedAgent(this.options.maxQueueLength, this.logger, this.limiter);
    return this.agent.register(handler, source, events);
  }

  stats(): IpcBrokerStats {
    let queued = 0;
    let queueHighWater = 0;
    for (const slot of this.slots) {
      queued += slot.queue.length;
      if (slot.highWater > queueHighWater) queueHighWater = slot.highWater;
    }
    const agent = this.agent?.stats();
    return {
      connections: this.connections.size,
      workersConnected: this.connectedWorkers.length,
      ...this.counters,
      queued,
      queueHighWater,
      ...(agent && {
        privilegedReceived: agent.received,
        privilegedHandled: agent.handled,
        privilegedHandlerErrors: agent.handlerErrors,
        privilegedDropped: agent.dropped,
        privilegedQueued: agent.queued,
      }),
    };
  }

  /** Waits until the queues of connected workers (the broker's own process excepted) are empty, or the time is up. */
  private async drain(timeoutMs: number): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    const busy = (): boolean =>
      this.slots.some(slot => slot !== this.hostSlot && slot.connection && slot.queue.length > 0);
    while (busy() && this.clock.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 5));
    }
  }

  /**
   * At close: an event still queued for a worker that stays (not the broker's
   * own process) is lost unless a live poster or a witness keeps a copy for
   * the next broker. Those are counted and logged with source/event/id.
   */
  private reportUndeliverable(): void {
    let lost = 0;
    for (const slot of this.slots) {
      if (slot === this.hostSlot) continue;
      for (let i = 0; i < slot.queue.length; i++) {
        const entry = slot.queue.at(i)!;
        if (this.hasLiveCopy(entry)) continue;
        lost++;
        this.counters.undeliverableAtClose++;
        this.limiter.error(
          'close-undeliverable',
          `ipc broker: closing with event ${describeEventBody(entry.body)} undelivered to worker #${slot.id}; no live process keeps a copy`,
        );
      }
    }
    this.limiter.flush();
    if (lost > 0) {
      this.logger.error(
        `ipc broker: closed with ${lost} queued event deliveries lost (counted in undeliverableAtClose)`,
      );
    }
  }

  /** A live poster (not the broker's process) keeps its copy until delivered; a witness keeps the broker process's. */
  private hasLiveCopy(entry: QueueEntry): boolean {
    if (!entry.record || !entry.poster) return false;
    if (this.isHostPost(entry)) return entry.record.witnessed;
    const owner = this.slots[entry.poster.slotId];
    return owner.poster === entry.poster && owner.connection !== undefined;
  }

  /** The high-water mark of each worker's queue, by worker id. */
  queueHighWaters(): number[] {
    return this.slots.map(slot => slot.highWater);
  }

  /**
   * Closes the broker: new connections are refused at once; with
   * `drainTimeoutMs`, waits (at most that long) for the connected workers
   * (the broker's own process excepted, it is leaving) to acknowledge what
   * their queues hold; then counts and logs every event left with no copy
   * anywhere else (posters and witnesses keep copies of theirs and resend
   * them to the next broker); flushes, closes every connection and the
   * socket, removes the socket file and releases the lock.
   */
  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const drainTimeoutMs = options.drainTimeoutMs ?? 0;
    if (drainTimeoutMs > 0) await this.drain(drainTimeoutMs);
    this.reportUndeliverable();
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
    // Last: the next broker may only unlink and bind once this one is gone.
    await this.lock?.release();
    this.lock = undefined;
    this.emit('closed');
  }
}
