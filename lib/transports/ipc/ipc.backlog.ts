import type { Clock } from '../../common/clock.js';
import type { BrokerConnection } from './ipc.broker-state.js';
import { FrameType } from './ipc.constants.js';
import { IpcProtocolError } from './ipc.errors.js';
import type { FrameWriter } from './ipc.frame.js';
import type { WorkerQueues } from './ipc.queues.js';

/** Writes a REJECT of `seq`: a connected worker's queue stayed full past the poster's postTimeoutMs. */
export function writeReject(w: FrameWriter, seq: number, maxQueueLength: number): void {
  w.begin(FrameType.Reject);
  w.u48(seq);
  w.str(`a connected worker's queue is full (limit ${maxQueueLength})`);
  w.end();
}

/**
 * Back-pressure at the broker: an event that finds a connected worker's
 * queue full waits in its poster connection's backlog (in arrival order, at
 * most the client's send window) and is placed when room is made; one that
 * waited past its poster's postTimeoutMs is rejected (REJECT, remembered for
 * a reconnect), so its post fails instead of hanging.
 */
export class HeldPosts {
  private readonly blocked = new Set<BrokerConnection>();
  private retryScheduled = false;
  /** Posts refused with a queue-full rejection after postTimeoutMs. */
  rejected = 0;
  /** High-water mark of the events held back (any one connection). */
  highWater = 0;

  constructor(
    private readonly queues: WorkerQueues,
    private readonly clock: Clock,
    private readonly maxQueueLength: number,
  ) {}

  /** Places the event now when nothing of `c` waits and there is room, else holds it. */
  offer(c: BrokerConnection, seq: number, body: Buffer, unique: string | undefined): void {
    if (c.backlog.length === 0 && this.queues.place(c, seq, body, unique)) return;
    if (c.backlog.length >= c.window) {
      throw new IpcProtocolError(
        `more than ${c.window} events sent without waiting for acknowledgement`,
      );
    }
    c.backlog.push({ seq, body, unique, deadline: c.chunkAt + c.postTimeoutMs });
    if (c.backlog.length > this.highWater) this.highWater = c.backlog.length;
    this.blocked.add(c);
    this.armHoldTimer(c);
  }

  /** Places what waits, in order; rejects what waited past its deadline. */
  drain(c: BrokerConnection): void {
    if (c.closing || !c.slot) return;
    const now = this.clock.now();
    for (let head = c.backlog.at(0); head; head = c.backlog.at(0)) {
      if (this.queues.place(c, head.seq, head.body, head.unique)) {
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

  /** Room was made (an ack, a disconnect): held posters try again, in the order they were held. */
  retry(): void {
    if (this.blocked.size === 0 || this.retryScheduled) return;
    this.retryScheduled = true;
    queueMicrotask(() => {
      this.retryScheduled = false;
      for (const c of [...this.blocked]) this.drain(c);
    });
  }

  /** `c` left: what it held is neither placed nor rejected here (its client resends it). */
  forget(c: BrokerConnection): void {
    this.blocked.delete(c);
    if (c.holdTimer) clearTimeout(c.holdTimer);
    c.holdTimer = undefined;
  }

  /** The broker closes: every hold timer stopped. */
  clear(): void {
    for (const c of this.blocked) if (c.holdTimer) clearTimeout(c.holdTimer);
    this.blocked.clear();
  }

  private armHoldTimer(c: BrokerConnection): void {
    const head = c.backlog.at(0);
    if (!head || c.holdTimer) return;
    const wait = Math.max(0, head.deadline - this.clock.now());
    c.holdTimer = setTimeout(() => {
      c.holdTimer = undefined;
      this.drain(c);
    }, wait + 1);
  }

  /** Rejects a waiting event whose poster's postTimeoutMs passed: never delivered, its post fails. */
  private reject(c: BrokerConnection, seq: number): void {
    this.rejected++;
    const slot = c.slot!;
    slot.rejected.push(seq);
    // Bounded: the client has at most a window of posts unacknowledged.
    while (slot.rejected.length > this.maxQueueLength) slot.rejected.shift();
    writeReject(c.writer, seq, this.maxQueueLength);
    this.queues.processed(c, seq);
  }
}
