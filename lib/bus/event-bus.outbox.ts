import { describeError, stackOf } from '../common/describe-error.js';
import { logLine } from '../common/log-line.js';
import { QueueFullError } from '../common/errors.js';
import { Fifo } from '../common/fifo.js';
import type { HeraldLogger } from '../common/logger.js';
import type { Envelope } from '../interfaces/envelope.interface.js';
import type { PublishResult, Transport } from '../interfaces/transport.interface.js';
import type { PostReceipt } from './event-bus.options.js';
import type { BusCounters } from './event-bus.stats.js';

const MAX_BATCH = 1000;

interface Outgoing {
  readonly envelope: Envelope;
  resolve(receipt: PostReceipt): void;
  reject(error: unknown): void;
}

/**
 * `new Promise(executor)` with one executor for every post, so a post
 * allocates its promise and nothing else for it: the executor leaves the
 * resolving functions here, and {@link deferred} takes them at once.
 */
let resolveNext: Outgoing['resolve'] = () => undefined;
let rejectNext: Outgoing['reject'] = () => undefined;
function capture(resolve: Outgoing['resolve'], reject: Outgoing['reject']): void {
  resolveNext = resolve;
  rejectNext = reject;
}

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
 * rejects the posts of its batch.
 */
export class Outbox {
  private readonly queue = new Fifo<Outgoing>();
  private flushScheduled = false;
  private publishing = 0;

  constructor(
    private readonly transport: Transport,
    private readonly maxPending: number,
    private readonly counters: BusCounters,
    private readonly logger: HeraldLogger,
    /** Called when a batch settled (the bus's idle check). */
    private readonly settled: () => void,
  ) {}

  /** Posts waiting or being published. */
  get busy(): boolean {
    return this.queue.length > 0 || this.publishing > 0;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Whether one more post fits in the bounded buffer. */
  hasRoom(): boolean {
    return this.queue.length < this.maxPending;
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
    const promise = new Promise<PostReceipt>(capture);
    this.queue.push({ envelope, resolve: resolveNext, reject: rejectNext });
    this.schedule(ready);
    return promise;
  }

  /** Flushes after `ready`, once per microtask however many posts were made. */
  schedule(ready: Promise<void>): void {
    if (this.flushScheduled || this.queue.length === 0) return;
    this.flushScheduled = true;
    ready.then(
      () => this.flush(),
      () => (this.flushScheduled = false),
    );
  }

  /** Rejects every waiting post with `error` (connect gave up, or the bus closed); @returns their envelopes. */
  rejectAll(error: unknown): Envelope[] {
    const waiting = this.queue.drain();
    for (const outgoing of waiting) outgoing.reject(error);
    return waiting.map(outgoing => outgoing.envelope);
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.queue.length > 0) {
      const batch: Outgoing[] = [];
      while (batch.length < MAX_BATCH && this.queue.length > 0) batch.push(this.queue.shift()!);
      this.publishing++;
      // A publish() that throws (synchronously or not) rejects this batch's
      // posts with its error; the bus and the process go on.
      callTransport(() => this.transport.publish(batch.map(outgoing => outgoing.envelope))).then(
        results => this.published(batch, results),
        error => this.failed(batch, error),
      );
    }
  }

  private failed(batch: Outgoing[], error: unknown): void {
    this.counters.publishFailed += batch.length;
    const first = batch[0].envelope;
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
    for (const outgoing of batch) outgoing.reject(error);
    this.publishing--;
    this.settled();
  }

  private published(batch: Outgoing[], results: readonly PublishResult[]): void {
    if (!Array.isArray(results)) {
      this.failed(
        batch,
        new TypeError(`transport ${this.transport.name} resolved publish() with no result list`),
      );
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const result = results[i];
      const outgoing = batch[i];
      if (result?.ok) {
        outgoing.resolve(
          result.ref === undefined
            ? { id: outgoing.envelope.id }
            : { id: outgoing.envelope.id, ref: result.ref },
        );
      } else {
        this.counters.publishFailed++;
        outgoing.reject(result?.error ?? new Error('transport returned no result for this event'));
      }
    }
    this.publishing--;
    this.settled();
  }
}
