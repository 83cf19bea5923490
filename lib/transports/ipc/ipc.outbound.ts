import { Fifo } from '../../common/fifo.js';
import { PayloadTooLargeError, QueueFullError } from '../../common/errors.js';
import type { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type { PublishResult } from '../../interfaces/transport.interface.js';
import { encodeEventBody } from './ipc.codec.js';
import { FrameType, MAX_UNANSWERED_POSTS } from './ipc.constants.js';
import { FrameWriter } from './ipc.frame.js';
import { Retained, type PendingBatch, type PendingFrame } from './ipc.retained.js';

const ACCEPTED: PublishResult = Object.freeze({ ok: true });
const EMPTY = Buffer.alloc(0);

/** Posts not yet encoded: more than the window plus maxQueueLength are unacknowledged. */
interface WaitingBatch {
  readonly envelopes: readonly Envelope[];
  readonly state: PendingBatch;
  next: number;
}

/** What the outbound side needs of its client. */
export interface OutboundHost {
  /** Frames were queued for writing: write them at the end of this turn. */
  scheduleFlush(): void;
  readonly limiter: WarningLimiter;
}

/**
 * The client's outbound side: posts encoded into numbered event frames (one
 * chunk per admit, sliced per frame), at most the broker's window in flight
 * and the window plus maxQueueLength encoded; what waits longer than
 * postTimeoutMs fails with `QueueFullError`; after a reconnect, what the
 * broker did not acknowledge is sent again in order. Acknowledged frames go
 * to {@link Retained} until the broker says they left every queue.
 */
export class Outbound {
  private readonly encoder = new FrameWriter();
  private pending = new Fifo<PendingFrame>();
  private readonly waiting = new Fifo<WaitingBatch>();
  /** Posts not yet encoded (bounded: beyond the limit a post fails at once with QueueFullError). */
  private waitingCount = 0;
  private unfinished = 0;
  private outSeq = 0;
  /** Slices to write at the next flush. */
  readonly out: Buffer[] = [];
  /** Highest seq written on the current connection. */
  private sentUpTo = 0;
  /** Highest seq the broker acknowledged (cumulative). */
  ackedSeq = 0;
  /** Unacknowledged frames the broker lets us have in flight (its maxQueueLength). */
  sendWindow: number;
  /** Limit of an event frame (the broker's, once it said it). */
  maxFrameBytes: number;
  /** Frames written on this connection and not yet acknowledged. */
  private unackedSent = 0;
  private expiryTimer?: NodeJS.Timeout;
  /** Frames may be written: a connection is up and its handshake done. */
  private sending = false;
  private resending = false;
  private idleWaiters: (() => void)[] = [];
  readonly retained: Retained;
  readonly counters = {
    published: 0,
    rejected: 0,
    resent: 0,
    pendingHighWater: 0,
    waitingHighWater: 0,
  };

  constructor(
    private readonly host: OutboundHost,
    private readonly maxQueueLength: number,
    private readonly postTimeoutMs: number,
    maxFrameBytes: number,
  ) {
    this.sendWindow = maxQueueLength;
    this.maxFrameBytes = maxFrameBytes;
    this.retained = new Retained(
      host.limiter,
      postTimeoutMs,
      () => this.maxQueueLength + this.sendWindow,
      (frame, error) => this.finish(frame, error),
    );
  }

  /** Unacknowledged posts in flight. */
  get inFlight(): number {
    return this.unfinished;
  }

  /** Queues a batch for sending; resolves with one result per envelope once the broker answered each. */
  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (batch.length === 0) return Promise.resolve([]);
    // Bounded: what does not fit among the posts not yet answered fails now, counted.
    const limit = Math.max(MAX_UNANSWERED_POSTS, 4 * (this.maxQueueLength + this.sendWindow));
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
        deadline: Date.now() + this.postTimeoutMs,
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

  /**
   * Encodes waiting posts into frames while fewer than the broker's window
   * plus maxQueueLength are unacknowledged; the rest wait (up to
   * postTimeoutMs) un-encoded. One chunk per call, sliced per frame.
   */
  private admit(): void {
    const ceiling = this.sendWindow + this.maxQueueLength;
    const w = this.encoder;
    const first = this.pending.length;
    while (this.waiting.length > 0 && this.pending.length < ceiling) {
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
      this.pending.push({
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
    const added = this.pending.length - first;
    if (added > 0) {
      const chunk = w.take();
      for (let i = first; i < this.pending.length; i++) this.pending.at(i)!.chunk = chunk;
      this.counters.published += added;
      if (this.pending.length > this.counters.pendingHighWater)
        this.counters.pendingHighWater = this.pending.length;
    }
    this.sendMore();
  }

  /**
   * Writes pending frames, in order, while fewer than the broker's window
   * are unacknowledged. Consecutive frames of one encoded chunk leave as
   * one slice.
   */
  private sendMore(): void {
    const head = this.pending.at(0);
    if (!head || !this.sending) return;
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
      this.host.scheduleFlush();
    }
    this.armExpiry();
  }

  /** Fails frames that could not be sent within postTimeoutMs (the broker's window stayed full). */
  private armExpiry(): void {
    if (this.expiryTimer || !this.sending) return;
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
    if (!this.sending) return;
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
        this.counters.rejected++;
        this.finish(frame, full());
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

  /** Ends a frame's post (with `error`, or accepted). */
  finish(frame: PendingFrame, error: Error | undefined): void {
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

  /** The pending frame of `seq`, if it is still pending. */
  find(seq: number): PendingFrame | undefined {
    // Pending seqs are consecutive, so the index is a subtraction.
    const head = this.pending.at(0);
    if (!head) return undefined;
    const frame = this.pending.at(seq - head.seq);
    return frame?.seq === seq ? frame : undefined;
  }

  /** The broker acknowledged (cumulatively) up to `seq`. */
  ackedUpTo(seq: number): void {
    if (seq > this.ackedSeq) this.ackedSeq = seq;
    const retained = this.retained;
    for (let head = this.pending.at(0); head && head.seq <= seq; head = this.pending.at(0)) {
      this.pending.shift();
      if (head.sent) this.unackedSent--;
      head.ackedAt = Date.now();
      // The broker's own process: its copy of the event dies with it, so its post resolves only once
      // another process keeps one (WITNESSED) or it left every queue (DELIVERED).
      if (!head.finished && !(retained.hosting && !head.error)) this.finish(head, head.error);
      retained.retain(head);
    }
    this.admit();
  }

  /**
   * A handshake is done: what the broker acknowledged settles, the rest of
   * the pending frames is sent again in order (after the retained ones, when
   * the broker is a new one). `lastSeqIn` is what the broker accepted.
   */
  welcomed(lastSeqIn: number, sendWindow: number, maxFrameBytes: number, newBroker: boolean): void {
    if (newBroker) this.pending = this.retained.replayInto(this.pending);
    this.maxFrameBytes = maxFrameBytes;
    this.sendWindow = sendWindow;
    this.ackedSeq = lastSeqIn;
    this.sending = false;
    this.ackedUpTo(lastSeqIn);
    // Nothing is in flight on a new connection.
    for (let i = 0; i < this.pending.length; i++) this.pending.at(i)!.sent = false;
    this.unackedSent = 0;
    // Resend, in order, what the broker has not acknowledged.
    this.sentUpTo = Math.max(lastSeqIn, (this.pending.at(0)?.seq ?? lastSeqIn + 1) - 1);
    this.out.length = 0;
    this.sending = true;
    // Until resume(): what is sent counts as resent (the replayed copies included).
    this.resending = true;
  }

  /** Sends what the window allows after a handshake (counted as resent). */
  resume(): void {
    this.sendMore();
    this.resending = false;
  }

  /** The connection went: nothing is written until the next handshake. */
  disconnected(): void {
    this.sending = false;
    this.out.length = 0;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  /** Resolves once every post was answered, or after `timeoutMs`. */
  idle(timeoutMs: number): Promise<void> {
    if (this.unfinished === 0) return Promise.resolve();
    return new Promise<void>(resolve => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Closing: every post not yet answered fails with `error`. */
  failAll(error: Error): void {
    this.disconnected();
    for (let frame = this.pending.shift(); frame; frame = this.pending.shift()) {
      if (!frame.finished) this.finish(frame, error);
    }
    for (let entry = this.waiting.shift(); entry; entry = this.waiting.shift()) {
      for (let i = entry.next; i < entry.envelopes.length; i++)
        this.complete(entry.state, i, error);
    }
    this.waitingCount = 0;
    this.retained.failAll(error);
  }
}
