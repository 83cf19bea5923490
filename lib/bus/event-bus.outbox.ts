import { describeError, stackOf } from '../common/describe-error.js';
import { logLine } from '../common/log-line.js';
import { QueueFullError } from '../common/errors.js';
import type { HeraldLogger } from '../common/logger.js';
import type { Envelope } from '../interfaces/envelope.interface.js';
import type { PublishResult, Transport } from '../interfaces/transport.interface.js';
import type { PostReceipt } from './event-bus.options.js';
import type { BusCounters } from './event-bus.stats.js';

const MAX_BATCH = 1000;
/**
 * A batch ends once its payloads pass this many characters (about 1 MiB),
 * whatever its count: a post settles when its whole batch was published, so
 * 1000 posts of 4 KB (4 MB) went out as one publish and the app and the
 * server took turns (the app waiting while the server ran 1000, then the
 * server idle while the app posted 1000 again). At ~255 per batch, the
 * server runs one while the app settles the one before (issue 24: bench:pg
 * at 4 KB, PgHub/herald events/s 1.32-1.47x -> 0.97-1.10x). At 100 B a batch
 * of 1000 is 100 KB: nothing changes.
 */
export const MAX_BATCH_CHARS = 1 << 20;

/** Calls the transport, turning a synchronous throw into a rejection. */
export function callTransport<T>(call: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Up to {@link MAX_BATCH} posts that go to the transport in one `publish`,
 * settled through one promise: each post's own promise is
 * `batch.promise.then(Batch.pick)` (a promise and a reaction, 96 bytes),
 * not a `new Promise` with its two resolving functions and their context
 * (216 bytes, and two array slots to keep them in), and it lives from the
 * post until the transport answered: across a Redis or PostgreSQL round
 * trip, through the scavenges that copy what is still alive (issue 24).
 */
class Batch {
  /** The posts' envelopes: the first {@link count} slots, trimmed when published. */
  readonly envelopes: Envelope[];
  count = 0;
  /** The payloads' characters so far (see {@link MAX_BATCH_CHARS}). */
  chars = 0;
  /** The next post {@link pick} settles: a promise's reactions run in the order they were added. */
  next = 0;
  /** The transport's results for {@link envelopes}, once it answered. */
  results: readonly PublishResult[] = [];
  readonly promise: Promise<Batch>;
  resolve!: (batch: Batch) => void;
  reject!: (error: unknown) => void;

  constructor(size: number) {
    this.envelopes = new Array<Envelope>(size);
    this.promise = new Promise<Batch>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /**
   * Every post's reaction to its batch (called once per post, in post
   * order): its receipt, or its own error. One function for every batch
   * (the batch is what its promise resolves with, so no closure per batch).
   * A publish that failed as a whole rejects the batch's promise: every
   * post's promise rejects with the same error, and this is not called.
   */
  static pick(this: void, batch: Batch): PostReceipt {
    const at = batch.next++;
    const result = batch.results[at] as PublishResult | undefined;
    if (result?.ok) {
      const { id } = batch.envelopes[at];
      return result.ref === undefined ? { id } : { id, ref: result.ref };
    }
    throw result?.error ?? new Error('transport returned no result for this event');
  }
}

/**
 * What an outbox fills when none is open: a batch with no room, so the
 * next post opens one. Also keeps the map of batches alive: V8 holds a map
 * only weakly when only objects use it, so with no batch alive at a full
 * collection (an idle bus) the map would go, and with it the optimized
 * posting path that checks for it (deoptimized, then compiled again, after
 * every idle full GC: seen as 20 recompiles of post in 20 idle gc() calls).
 */
const NO_ROOM = new Batch(0);
NO_ROOM.count = MAX_BATCH;

/**
 * Posts on their way to the transport: a bounded buffer (`maxPending`),
 * flushed once per microtask after the transport connected (posts made
 * before wait, in order), in batches of up to 1000 or the transport's
 * `publishBatchSize` (and about 1 MiB of
 * payloads, {@link MAX_BATCH_CHARS}), each post settled with
 * the transport's result for its envelope. A publish that throws or rejects
 * rejects the posts of its batch. Waiting posts are {@link Batch}es, filled
 * as posts come: a batch is the very array published, and its one promise
 * settles all of its posts.
 */
export class Outbox {
  /** The batches waiting for the flush, in post order; only the last may have room. */
  private batches: Batch[] = [];
  /** The last of {@link batches}, or {@link NO_ROOM}. */
  private filling = NO_ROOM;
  private count = 0;
  /** The size of the last flushed batch: the next is likely the same (no growth from empty). */
  private hint = 16;
  private flushScheduled = false;
  private publishing = 0;
  /** Posts per publish at most: the transport's `publishBatchSize`, within 1 to {@link MAX_BATCH}. */
  private readonly maxBatch: number;

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
    // {@link take} replaces the list at every flush. Replaced once here
    // already, so that V8 never tracks it as a constant field: code
    // optimized during a cold app's first burst of posts (add,
    // EventBus.post) would otherwise embed the first list and be thrown
    // away at the first flush (issue 16: deoptimized, and a compile still
    // running aborted, in the first post pass).
    this.batches = [];
    const size = transport.publishBatchSize;
    this.maxBatch =
      size !== undefined && Number.isInteger(size) && size >= 1 && size < MAX_BATCH
        ? size
        : MAX_BATCH;
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
    let batch = this.filling;
    if (batch.count >= this.maxBatch || batch.chars > MAX_BATCH_CHARS) {
      batch = new Batch(this.hint);
      this.batches.push(batch);
      this.filling = batch;
    }
    batch.envelopes[batch.count++] = envelope;
    batch.chars += envelope.payload.length;
    this.count++;
    return batch.promise.then(Batch.pick);
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
    const all: Envelope[] = [];
    for (const batch of this.take()) {
      for (const envelope of batch.envelopes) {
        this.refused(envelope);
        all.push(envelope);
      }
      batch.reject(error);
    }
    return all;
  }

  /** Empties the buffer: @returns its batches, each trimmed to its posts (they now belong to the caller). */
  private take(): Batch[] {
    const batches = this.batches;
    // Trimming a longer array only shortens it in place; a shorter one is
    // never longer than count (posts past the hint were appended).
    for (const batch of batches) batch.envelopes.length = batch.count;
    // The next burst is likely this one's size.
    this.hint = Math.min(Math.max(this.count, 16), this.maxBatch);
    this.batches = [];
    this.filling = NO_ROOM;
    this.count = 0;
    return batches;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.count === 0) return;
    for (const batch of this.take()) {
      const envelopes = batch.envelopes;
      this.publishing++;
      // A publish() that throws (synchronously or not) rejects this batch's
      // posts with its error; the bus and the process go on.
      callTransport(() => this.transport.publish(envelopes)).then(
        results => this.published(batch, results),
        error => this.failed(batch, error),
      );
    }
  }

  private failed(batch: Batch, error: unknown): void {
    const envelopes = batch.envelopes;
    this.counters.publishFailed += envelopes.length;
    const first = envelopes[0];
    this.logger.error(
      logLine(
        'bus',
        'bus-publish-failed',
        `transport ${this.transport.name} failed to publish ${envelopes.length} event(s): ${describeError(error)}`,
        {
          transport: this.transport.name,
          count: envelopes.length,
          source: first.source,
          event: first.event,
          id: first.id,
        },
      ),
      stackOf(error),
    );
    for (const envelope of envelopes) this.refused(envelope);
    batch.reject(error);
    this.publishing--;
    this.settled();
  }

  private published(batch: Batch, results: readonly PublishResult[]): void {
    if (!Array.isArray(results)) {
      this.failed(
        batch,
        new TypeError(`transport ${this.transport.name} resolved publish() with no result list`),
      );
      return;
    }
    // Counted now; each refused post rejects with its own error in its
    // reaction (Batch.pick), a microtask later.
    const envelopes = batch.envelopes;
    for (let i = 0; i < envelopes.length; i++) {
      if (!(results[i] as PublishResult | undefined)?.ok) {
        this.counters.publishFailed++;
        this.refused(envelopes[i]);
      }
    }
    batch.results = results;
    batch.resolve(batch);
    this.publishing--;
    this.settled();
  }
}
