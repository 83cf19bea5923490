// One role at 426 lines: placement, queues and delivery records change together (a
// record counts the queues an entry went into); split apart they would share every field.
import { Fifo } from '../../common/fifo.js';
import type { HeraldLogger } from '../../common/logger.js';
import { logLine } from '../../common/log-line.js';
import type { UniqueCache } from '../../common/unique-cache.js';
import type { WarningLimiter } from '../../common/warning-limiter.js';
import {
  newSlot,
  type BrokerConnection,
  type QueueEntry,
  type WorkerSlot,
} from './ipc.broker-state.js';
import { describeEventBody } from './ipc.codec.js';
import { DELIVER_WITNESS, FrameType, SESSIONS_PER_WORKER } from './ipc.constants.js';
import { IpcProtocolError } from './ipc.errors.js';
import type { PrivilegedAgent } from './ipc.privileged.js';

/** What the queues need of the broker. */
export interface QueuesHost {
  /** `c` has frames to write (or an ack due). */
  markDirty(c: BrokerConnection): void;
  /** Room was made in a queue: held posters may try again. */
  roomMade(): void;
}

/** The placement counters of {@link IpcBrokerStats}. */
export interface QueueCounters {
  posted: number;
  duplicates: number;
  uniqueDropped: number;
  delivered: number;
  dropped: number;
  undeliverableAtClose: number;
  undeliveredHighWater: number;
}

/**
 * The broker's worker slots and their queues: one queue per worker id (not
 * per connection, so events wait for a worker that starts late or
 * restarts), numbered per worker; placement of each accepted event into
 * every queue at once (one global order) or, for `unique`, into one
 * connected worker's; the per-poster records that say when an event left
 * every queue it went into (DELIVERED), and which posts of the broker's own
 * process another worker keeps a copy of (WITNESSED / RELEASED).
 */
export class WorkerQueues {
  readonly slots: WorkerSlot[] = [];
  /** The client session of the process hosting the broker (its posts get witnesses). */
  hostSession?: string;
  hostSlot?: WorkerSlot;
  /** The privileged agent (the broker's process as a receiver), once there is one. */
  agent?: PrivilegedAgent;
  readonly counters: QueueCounters = {
    posted: 0,
    duplicates: 0,
    uniqueDropped: 0,
    delivered: 0,
    dropped: 0,
    undeliverableAtClose: 0,
    undeliveredHighWater: 0,
  };
  private placements = 0;
  private undelivered = 0;

  constructor(
    workerCount: number,
    private readonly maxQueueLength: number,
    private readonly unique: UniqueCache,
    private readonly uniqueTtlMs: number,
    private readonly host: QueuesHost,
    private readonly logger: HeraldLogger,
    private readonly limiter: WarningLimiter,
  ) {
    for (let id = 0; id < workerCount; id++) this.slots.push(newSlot(id));
  }

  /**
   * Binds a connection that said HELLO to its worker id's slot. Another
   * process with this id (a new session) gets everything still queued; the
   * same process reconnecting gets what it did not receive yet.
   */
  attach(c: BrokerConnection, slot: WorkerSlot, session: string, lastReceived: number): void {
    slot.seenAt ??= this.placements;
    c.slot = slot;
    slot.connection = c;
    if (session !== slot.session) {
      this.switchSession(slot, session);
      slot.sentSeq = slot.headSeq - 1;
    } else {
      const last = slot.headSeq + slot.queue.length - 1;
      slot.sentSeq = Math.max(slot.headSeq - 1, Math.min(lastReceived, last));
    }
    if (this.hostSession !== undefined && session === this.hostSession) this.hostSlot = slot;
  }

  /** Unbinds the slot's connection: what was sent and not acked will be sent again. */
  detach(slot: WorkerSlot): void {
    slot.connection = undefined;
    slot.sentSeq = slot.headSeq - 1;
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
    slot.poster = saved?.poster ?? { slotId: slot.id, session, records: new Fifo<QueueEntry>() };
    slot.lastSeqIn = saved?.lastSeqIn ?? 0;
    slot.rejected = saved?.rejected ?? new Fifo<number>();
  }

  /** Whether a connected worker's queue has no room (a broadcast must wait). */
  connectedFull(): WorkerSlot | undefined {
    for (const slot of this.slots)
      if (slot.connection && slot.queue.length >= this.maxQueueLength) return slot;
    return undefined;
  }

  /**
   * Accepts an event of `c`'s worker into the queues, or drops it as a resend
   * or a unique repeat. @returns false when a connected worker's queue has no room.
   */
  place(c: BrokerConnection, seq: number, body: Buffer, unique: string | undefined): boolean {
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
          `ipc broker: dropped unique event ${describeEventBody(body)}: key '${unique}' already ran within ${this.uniqueTtlMs} ms`,
        );
      } else {
        this.enqueue(target, this.entry(slot, seq, body, true, target));
      }
    } else {
      if (this.connectedFull()) return false;
      const entry = this.entry(slot, seq, body, false);
      for (const other of this.slots) this.enqueue(other, entry);
      this.agent?.push(body);
    }
    this.counters.posted++;
    this.processed(c, seq);
    return true;
  }

  /** Places an event of the broker itself (no poster record) into every queue. */
  placeOwn(body: Buffer): void {
    const entry: QueueEntry = {
      body,
      placed: ++this.placements,
      poster: undefined,
      seq: 0,
      refs: 0,
      witnessed: false,
    };
    this.counters.posted++;
    for (const slot of this.slots) this.enqueue(slot, entry);
    this.agent?.push(body);
  }

  /** Seq of `c`'s worker processed (accepted, dropped or rejected): acknowledged at the next write. */
  processed(c: BrokerConnection, seq: number): void {
    c.slot!.lastSeqIn = seq;
    c.ackDue = seq;
    this.host.markDirty(c);
  }

  /** A queue entry whose record (when it has a poster) counts the queues (of worker ids seen so far) it goes into. */
  private entry(
    slot: WorkerSlot,
    seq: number,
    body: Buffer,
    unique: boolean,
    target?: WorkerSlot,
  ): QueueEntry {
    const placed = ++this.placements;
    const poster = slot.poster;
    if (!poster) return { body, placed, poster: undefined, seq, refs: 0, witnessed: false };
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
    if (refs === 0) return { body, placed, poster: undefined, seq, refs: 0, witnessed: false };
    const entry: QueueEntry = { body, placed, poster, seq, refs, witnessed: false };
    poster.records.push(entry);
    if (++this.undelivered > this.counters.undeliveredHighWater)
      this.counters.undeliveredHighWater = this.undelivered;
    return entry;
  }

  /** A connected worker with room, picked at random (the original picks a random worker). */
  private uniqueTarget(): WorkerSlot | undefined {
    let candidates = 0;
    let picked: WorkerSlot | undefined;
    for (const slot of this.slots) {
      if (!slot.connection || slot.queue.length >= this.maxQueueLength) continue;
      candidates++;
      if (Math.random() * candidates < 1) picked = slot;
    }
    return picked;
  }

  private enqueue(slot: WorkerSlot, entry: QueueEntry): void {
    if (slot.queue.length >= this.maxQueueLength) {
      const oldest = slot.queue.shift()!;
      slot.headSeq++;
      if (slot.sentSeq < slot.headSeq - 1) slot.sentSeq = slot.headSeq - 1;
      this.counters.dropped++;
      this.limiter.warn(
        `queue-full-${slot.id}`,
        logLine(
          'ipc',
          'worker-queue-full',
          `queue of worker #${slot.id} is full (${this.maxQueueLength}) while it is not connected; dropped its oldest event ${describeEventBody(oldest.body)}`,
          { worker: slot.id, dropped: this.counters.dropped },
        ),
      );
      this.released(slot, oldest, false);
    }
    slot.queue.push(entry);
    if (slot.queue.length > slot.highWater) slot.highWater = slot.queue.length;
    if (slot.connection) this.pump(slot);
  }

  /** Writes queued events to the worker's connection, up to its window of unacknowledged ones. */
  pump(slot: WorkerSlot): void {
    const c = slot.connection;
    if (!c || c.closing) return;
    const last = slot.headSeq + slot.queue.length - 1;
    const limit = Math.min(last, slot.headSeq - 1 + c.window);
    if (slot.sentSeq >= limit) return;
    const w = c.writer;
    const hostSlot = this.hostSlot;
    const from = slot.sentSeq;
    while (slot.sentSeq < limit) {
      const seq = slot.sentSeq + 1;
      const entry = slot.queue.at(seq - slot.headSeq)!;
      w.begin(FrameType.Deliver);
      w.u48(seq);
      if (slot !== hostSlot && this.isHostPost(entry)) {
        w.u8(DELIVER_WITNESS);
        w.u48(entry.seq);
      } else {
        w.u8(0);
      }
      w.bytes(entry.body);
      w.end();
      slot.sentSeq = seq;
    }
    this.counters.delivered += limit - from;
    this.host.markDirty(c);
  }

  /** The worker acknowledged (cumulatively) up to `seq`: its queue lets go of those. */
  acked(slot: WorkerSlot, seq: number): void {
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
      this.host.roomMade();
    }
  }

  /**
   * A queue let go of an entry (acknowledged, or dropped when `acked` is
   * false): its poster may learn it was delivered everywhere; a post of the
   * broker's own process acknowledged by another worker has a witness.
   */
  private released(slot: WorkerSlot, entry: QueueEntry, acked: boolean): void {
    const poster = entry.poster;
    if (!poster) return;
    const hostPost = this.isHostPost(entry);
    if (acked && hostPost && slot !== this.hostSlot && !entry.witnessed) {
      entry.witnessed = true;
      if (this.hostSlot?.connection) this.host.markDirty(this.hostSlot.connection);
    }
    if (slot.seenAt === undefined || slot.seenAt >= entry.placed) return;
    if (hostPost && slot === this.hostSlot) return;
    if (--entry.refs > 0) return;
    this.undelivered--;
    const records = poster.records;
    if (records.at(0) !== entry) return;
    while (records.length > 0 && records.at(0)!.refs <= 0) records.shift();
    const owner = this.slots[poster.slotId];
    if (owner.poster === poster && owner.connection) this.host.markDirty(owner.connection);
    // Witnesses may drop their copies of the broker process's posts up to here.
    if (hostPost)
      for (const other of this.slots)
        if (other !== owner && other.connection) this.host.markDirty(other.connection);
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

  /** Writes what `c`'s worker may now let go of: DELIVERED, and WITNESSED (host) or RELEASED (others). */
  writeDelivered(c: BrokerConnection): void {
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

  /** Whether a connected worker (the broker's own process excepted) still has events queued. */
  busy(): boolean {
    return this.slots.some(
      slot => slot !== this.hostSlot && slot.connection && slot.queue.length > 0,
    );
  }

  /**
   * At close: an event still queued for a worker that stays (not the broker's
   * own process) is lost unless a live poster or a witness keeps a copy for
   * the next broker. Those are counted and logged with source/event/id.
   * @returns how many deliveries were lost.
   */
  reportUndeliverable(): number {
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
          logLine(
            'ipc',
            'broker-close-undeliverable',
            `closing with event ${describeEventBody(entry.body)} undelivered to worker #${slot.id}; no live process keeps a copy`,
            { worker: slot.id },
          ),
        );
      }
    }
    return lost;
  }

  /** A live poster (not the broker's process) keeps its copy until delivered; a witness keeps the broker process's. */
  private hasLiveCopy(entry: QueueEntry): boolean {
    if (!entry.poster) return false;
    if (this.isHostPost(entry)) return entry.witnessed;
    const owner = this.slots[entry.poster.slotId];
    return owner.poster === entry.poster && owner.connection !== undefined;
  }

  /** Events queued (all slots) and the highest queue length seen. */
  queueStats(): { queued: number; queueHighWater: number } {
    let queued = 0;
    let queueHighWater = 0;
    for (const slot of this.slots) {
      queued += slot.queue.length;
      if (slot.highWater > queueHighWater) queueHighWater = slot.highWater;
    }
    return { queued, queueHighWater };
  }
}
