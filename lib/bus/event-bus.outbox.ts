import { describeError, stackOf } from '../common/describe-error.js';
import { logLine } from '../common/log-line.js';
import { QueueFullError } from '../common/errors.js';
import type { HeraldLogger } from '../common/logger.js';
import type { Envelope } from '../interfaces/envelope.interface.js';
import type { PublishResult, Transport } from '../interfaces/transport.interface.js';
import type { PostReceipt } from './event-bus.options.js';
import type { BusCounters } from './event-bus.stats.js';

const MAX_BATCH = 1000;

type Resolve = (receipt: PostReceipt) => void;
type Reject = (error: unknown) => void;

/** Calls the transport, turning a synchronous throw into a rejection. */
export function callTransport<T>(call: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Posts on their way to the transport: a bounded buffer (`maxPending`),
 * flushed in batches of up to 1000 once per microtask after the transport
 * connected (posts made before wait, in order), each post settled with the
 * transport's result for its envelope. A publish that throws or rejects
 * rejects the posts of its batch. Waiting posts are three parallel arrays
 * (envelopes, resolvers, rejecters), handed over whole at a flush: no
 * per-post record, and a batch of up to 1000 is the very array queued.
 */
export class Outbox {
  /**
   * The waiting posts: the first {@link count} slots of three arrays made
   * at the size of the last flush (up to {@link MAX_BATCH}), so a burst
   * fills them without growing them from empty (a copy of each array at
   * every growth step); trimmed to `count` when handed over.
   */
  private envelopes: Envelope[] = [];
  private resolvers: Resolve[] = [];
  private rejecters: Reject[] = [];
  private count = 0;
  private flushScheduled = false;
  private publishing = 0;
  /**
   * `new Promise(executor)` with one executor for every post of this
   * outbox, so a post allocates its promise and nothing else for it: the
   * executor, called at once, leaves the resolving functions in the slot
   * {@link add} is filling. Straight into the arrays: kept in module
   * variables they cost two write barriers more per post.
   */
  private readonly capture = (resolve: Resolve, reject: Reject): void => {
    const at = this.count;
    this.resolvers[at] = resolve;
    this.rejecters[at] = reject;
  };

  constructor(
    private readonly transport: Transport,
    private readonly maxPending: number,
    private readonly counters: BusCounters,
    private readonly logger: HeraldLogger,
    /** Called when a batch settled (the bus's idle check). */
    private readonly settled: () => void,
    /** Called for each post the transport refused or never got, before its batch's `settled`. */
    private readonly refused: (envelope: Envelope) => void = () => undefined,
  ) {
    // {@link take} replaces the three arrays at every flush. Replaced once
    // here already, so that V8 never tracks them as constant fields: code
    // optimized during a cold app's first burst of posts (add, the
    // executor, EventBus.post) would otherwise embed the first arrays and
    // be thrown away at the first flush (issue 16: deoptimized, and a
    // compile still running aborted, in the first post pass).
    this.envelopes = [];
    this.resolvers = [];
    this.rejecters = [];
  }

  /** Posts waiting or being published. */
  get busy(): boolean {
    return this.count > 0 || this.publishing > 0;
  }

  get length(): number {
    return this.count;
  }

  /** Whether one more post fits in the bounded buffer. */
  hasRoom(): boolean {
    return this.count < this.maxPending;
  }

  /** What a post beyond the bound rejects with. */
  fullError(): QueueFullError {
    return new QueueFullError('outgoing', this.maxPending);
  }

  /**
   * Queues an envelope; `ready` resolves once the transport can publish
   * (the bus's connect), and rejecting it leaves the post to {@link rejectAll}.
   */
  push(envelope: Envelope, ready: Promise<void>): Promise<PostReceipt> {
    if (!this.hasRoom()) return Promise.reject(this.fullError());
    const promise = this.add(envelope);
    this.schedule(ready);
    return promise;
  }

  /**
   * {@link push} in two steps, for the bus's posting path: queues an
   * envelope the caller made room for ({@link hasRoom}); the caller then
   * calls {@link schedule} unless a flush is {@link scheduled} already, so
   * only the first post of a turn asks for the transport's readiness.
   */
  add(envelope: Envelope): Promise<PostReceipt> {
    const promise = new Promise<PostReceipt>(this.capture);
    this.envelopes[this.count++] = envelope;
    return promise;
  }

  /** Whether a flush is due: posts queued now go out with it. */
  get scheduled(): boolean {
    return this.flushScheduled;
  }

  /** Flushes after `ready`, once per microtask however many posts were made. */
  schedule(ready: Promise<void>): void {
    if (this.flushScheduled || this.count === 0) return;
    this.flushScheduled = true;
    ready.then(
      () => this.flush(),
      () => (this.flushScheduled = false),
    );
  }

  /** Rejects every waiting post with `error` (connect gave up, or the bus closed); @returns their envelopes. */
  rejectAll(error: unknown): Envelope[] {
    const { envelopes, rejecters } = this.take();
    for (let i = 0; i < envelopes.length; i++) {
      this.refused(envelopes[i]);
      rejecters[i](error);
    }
    return envelopes;
  }

  /** Empties the buffer: @returns its arrays, trimmed to the posts (they now belong to the caller). */
  private take(): { envelopes: Envelope[]; resolvers: Resolve[]; rejecters: Reject[] } {
    const { envelopes, resolvers, rejecters, count } = this;
    // Trimming a longer array only shortens it in place; a shorter one is
    // never longer than count (posts past the hint were appended).
    envelopes.length = count;
    resolvers.length = count;
    rejecters.length = count;
    // The next burst is likely this one's size.
    const hint = Math.min(Math.max(count, 16), MAX_BATCH);
    this.envelopes = new Array<Envelope>(hint);
    this.resolvers = new Array<Resolve>(hint);
    this.rejecters = new Array<Reject>(hint);
    this.count = 0;
    return { envelopes, resolvers, rejecters };
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.count === 0) return;
    const { envelopes, resolvers, rejecters } = this.take();
    for (let at = 0; at < envelopes.length; at += MAX_BATCH) {
      // Up to MAX_BATCH posts: the arrays as they are; more: a slice each.
      const whole = at === 0 && envelopes.length <= MAX_BATCH;
      const end = at + MAX_BATCH;
      const batch = whole ? envelopes : envelopes.slice(at, end);
      const resolve = whole ? resolvers : resolvers.slice(at, end);
      const reject = whole ? rejecters : rejecters.slice(at, end);
      this.publishing++;
      // A publish() that throws (synchronously or not) rejects this batch's
      // posts with its error; the bus and the process go on.
      callTransport(() => this.transport.publish(batch)).then(
        results => this.published(batch, resolve, reject, results),
        error => this.failed(batch, reject, error),
      );
    }
  }

  private failed(batch: readonly Envelope[], reject: readonly Reject[], error: unknown): void {
    this.counters.publishFailed += batch.length;
    const first = batch[0];
    this.logger.error(
      logLine(
        'bus',
        'bus-publish-failed',
        `transport ${this.transport.name} failed to publish ${batch.length} event(s): ${describeError(error)}`,
        {
          transport: this.transport.name,
          count: batch.length,
          source: first.source,
          event: first.event,
          id: first.id,
        },
      ),
      stackOf(error),
    );
    for (let i = 0; i < batch.length; i++) {
      this.refused(batch[i]);
      reject[i](error);
    }
    this.publishing--;
    this.settled();
  }

  private published(
    batch: readonly Envelope[],
    resolve: readonly Resolve[],
    reject: readonly Reject[],
    results: readonly PublishResult[],
  ): void {
    if (!Array.isArray(results)) {
      this.failed(
        batch,
        reject,
        new TypeError(`transport ${this.transport.name} resolved publish() with no result list`),
      );
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const result = results[i];
      if (result?.ok) {
        const { id } = batch[i];
        resolve[i](result.ref === undefined ? { id } : { id, ref: result.ref });
      } else {
        this.counters.publishFailed++;
        this.refused(batch[i]);
        reject[i](result?.error ?? new Error('transport returned no result for this event'));
      }
    }
    this.publishing--;
    this.settled();
  }
}
