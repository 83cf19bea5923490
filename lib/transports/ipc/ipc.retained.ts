import { Fifo } from '../../common/fifo.js';
import { logLine } from '../../common/log-line.js';
import type { WarningLimiter } from '../../common/warning-limiter.js';
import type { PublishResult } from '../../interfaces/transport.interface.js';

/** One `publish` call: resolved once every frame of it was acknowledged, rejected or refused. */
export interface PendingBatch {
  readonly results: PublishResult[];
  /** Frames of it not sent by then fail with QueueFullError (never sent). */
  readonly deadline: number;
  remaining: number;
  resolve(results: readonly PublishResult[]): void;
}

/** A sent (or to-be-sent) event frame, kept until the broker acknowledges it, for resending. */
export interface PendingFrame {
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

/**
 * Frames the broker acknowledged but has not yet delivered to every worker
 * (consecutive seqs, ending at the ack): resent if a new broker takes over.
 * In the process hosting the broker a post resolves only once another
 * process keeps a copy (WITNESSED) or it left every queue (DELIVERED), or,
 * with no witness within postTimeoutMs, anyway (counted and said).
 */
export class Retained {
  private frames = new Fifo<PendingFrame>();
  /** This process hosts the broker it is connected to: posts resolve on WITNESSED, not on the ack. */
  hosting = false;
  /** Highest seq the broker said left every worker queue. */
  private deliveredSeq = 0;
  /** Highest seq the broker said is witnessed (or delivered everywhere). */
  private witnessedSeq = 0;
  private witnessTimer?: NodeJS.Timeout;
  readonly counters = {
    retainedHighWater: 0,
    /** Acknowledged frames given up for a failover resend because the retained copies hit their bound. */
    retainedDropped: 0,
    /** Frames accepted by a broker that died, resent to the next one. */
    replayed: 0,
    /** Posts of the broker's own process resolved after postTimeoutMs with no witness (logged). */
    unwitnessedResolved: 0,
  };

  constructor(
    private readonly limiter: WarningLimiter,
    private readonly postTimeoutMs: number,
    /** Bound of the retained frames: every one is in some worker queue. */
    private readonly limit: () => number,
    /** Resolves a frame's post (with its error, if any). */
    private readonly finish: (frame: PendingFrame, error: Error | undefined) => void,
  ) {}

  get length(): number {
    return this.frames.length;
  }

  /** Keeps an acknowledged frame until the broker says it was delivered everywhere. */
  retain(frame: PendingFrame): void {
    if (frame.seq <= this.deliveredSeq || frame.seq <= this.witnessedSeq) this.settleHeld(frame);
    if (frame.seq <= this.deliveredSeq) return;
    frame.replay = false;
    this.frames.push(frame);
    if (!frame.finished) this.armWitnessTimer();
    const limit = this.limit();
    if (this.frames.length > limit) {
      const dropped = this.frames.shift()!;
      this.settleHeld(dropped);
      this.counters.retainedDropped++;
      this.limiter.warn(
        'retained-dropped',
        logLine(
          'ipc',
          'retained-dropped',
          `more than ${limit} acknowledged events not yet delivered everywhere; the oldest would not be resent after a broker failover`,
          { seq: dropped.seq, dropped: this.counters.retainedDropped },
        ),
      );
    }
    if (this.frames.length > this.counters.retainedHighWater)
      this.counters.retainedHighWater = this.frames.length;
  }

  /** DELIVERED: frames up to `seq` left every queue. */
  deliveredUpTo(seq: number): void {
    if (seq > this.deliveredSeq) this.deliveredSeq = seq;
    for (let head = this.frames.at(0); head && head.seq <= seq; head = this.frames.at(0)) {
      this.frames.shift();
      this.settleHeld(head);
    }
  }

  /** WITNESSED: another process keeps a copy of our posts up to `seq` (or they left every queue): they resolve. */
  witnessedUpTo(seq: number): void {
    if (seq <= this.witnessedSeq) return;
    const from = this.witnessedSeq + 1;
    this.witnessedSeq = seq;
    const head = this.frames.at(0);
    if (!head) return;
    for (let s = Math.max(from, head.seq); s <= seq; s++) {
      const frame = this.frames.at(s - head.seq);
      if (frame) this.settleHeld(frame);
    }
  }

  /**
   * A new broker: the old one's copies died with it. What it had
   * acknowledged but not yet delivered to every worker goes in front of
   * `pending`, to be sent again (their posts resolved already; some workers
   * may see them twice). @returns the merged queue.
   */
  replayInto(pending: Fifo<PendingFrame>): Fifo<PendingFrame> {
    this.witnessedSeq = 0;
    if (this.frames.length === 0) return pending;
    const merged = new Fifo<PendingFrame>();
    for (let frame = this.frames.shift(); frame; frame = this.frames.shift()) {
      frame.replay = frame.error === undefined;
      if (frame.replay) this.counters.replayed++;
      frame.sent = false;
      merged.push(frame);
    }
    for (let i = 0; i < pending.length; i++) merged.push(pending.at(i)!);
    return merged;
  }

  /** Closing: the posts still held for a witness fail with `error`. */
  failAll(error: Error): void {
    if (this.witnessTimer) clearTimeout(this.witnessTimer);
    this.witnessTimer = undefined;
    for (let frame = this.frames.shift(); frame; frame = this.frames.shift())
      if (!frame.finished) this.finish(frame, error);
  }

  /** Resolves a post of the broker's own process held for a witness. */
  private settleHeld(frame: PendingFrame): void {
    if (!frame.finished) this.finish(frame, frame.error);
  }

  /**
   * Bounded wait for a witness: no other process connected (or all of them
   * stalled) for postTimeoutMs, the post resolves anyway, counted and said.
   */
  private armWitnessTimer(): void {
    if (this.witnessTimer) return;
    const oldest = this.oldestHeld();
    if (!oldest) return;
    const wait = Math.max(0, oldest.ackedAt + this.postTimeoutMs - Date.now());
    this.witnessTimer = setTimeout(() => {
      this.witnessTimer = undefined;
      const now = Date.now();
      for (let frame = this.oldestHeld(); frame; frame = this.oldestHeld()) {
        if (frame.ackedAt + this.postTimeoutMs > now) break;
        this.counters.unwitnessedResolved++;
        this.limiter.warn(
          'unwitnessed',
          logLine(
            'ipc',
            'unwitnessed-post',
            `a post of the broker's own process resolved without another process keeping a copy within ${this.postTimeoutMs} ms (no other worker acknowledged it); it would not survive this process's death`,
            { seq: frame.seq, unwitnessed: this.counters.unwitnessedResolved },
          ),
        );
        this.settleHeld(frame);
      }
      this.armWitnessTimer();
    }, wait + 1);
    this.witnessTimer.unref();
  }

  private oldestHeld(): PendingFrame | undefined {
    for (let i = 0; i < this.frames.length; i++) {
      const frame = this.frames.at(i)!;
      if (!frame.finished) return frame;
    }
    return undefined;
  }
}
