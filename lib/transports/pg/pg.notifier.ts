import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { describeError, asError } from '../../common/describe-error.js';
import { Fifo } from '../../common/fifo.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import {
  NOTIFY_SEPARATOR,
  SQL_NOTIFY_MANY,
  SQL_NOTIFY_MANY_ONE_TOPIC,
  SQL_NOTIFY_ONE,
  SQL_NOTIFY_PACKED,
  SQL_NOTIFY_PACKED_ONE_TOPIC,
} from './pg.constants.js';
import { packPayloads, payloadLength, payloadText, type PgPayload } from './pg.packed-payloads.js';

/**
 * About how many bytes of payloads one batch statement carries at most (its
 * notifies are cut there, `batchSize` still bounding their count): 1 MiB,
 * while 1000 of 100 B stay one statement. Large payloads are cut far
 * sooner, at {@link LARGE_NOTIFY_BATCH_BYTES}.
 * Notifies come back in batches as large as the ones that went out (a
 * sender's next notify waits for its last), so a batch of all that is
 * queued leaves the server idle while this process re-sends it all, and
 * this process idle while the server runs it. Smaller batches overlap the
 * two: one statement runs while this process settles the one before and
 * encodes the next (issue 24: bench:pg at 4 KB, 1024 sends in flight, went
 * out as batches of 1000 and 24 in turn).
 */
export const NOTIFY_BATCH_BYTES = 1024 * 1024;

/**
 * Payloads of at least this many bytes on average make a batch "large": it
 * is cut at {@link LARGE_NOTIFY_BATCH_BYTES}. Between the two sizes
 * measured (issue 24, helper pg24, bench/pg-before-after.ts, interleaved):
 * at 1 KB of data (herald's payloads ~1.2 KB, 40 to a statement) herald
 * lost (events/s 0.82x, CPU per event 1.41x of 1 MiB statements); at 4 KB
 * (~4.25 KB, 11 to a statement) it gained (events/s 1.47x and 1.49x).
 */
export const LARGE_PAYLOAD_BYTES = 3 * 1024;

/**
 * Where a batch of large payloads is cut (48 KiB: 11 notifies of 4 KB).
 *
 * With large payloads PostgreSQL is the bottleneck, and its sending
 * backend's CPU per notify grows with the statement: its parameter, the
 * split array and the pending notifies (a few copies of the payloads) go
 * through glibc's heap, which is trimmed and grown again statement after
 * statement once they outgrow its 128 KiB thresholds, every page faulted
 * in afresh, and out of the CPU's caches. Issue 24, helper pg24, PostgreSQL
 * 15, the packed statement, one listener, /proc/<pid>/schedstat and minor
 * faults of the sending backend per notify of 4,200 B: 250 per statement
 * (1 MiB) 93-94 µs and 5.3-5.5 faults; 23-31 per statement 28-84 µs and
 * 0-2.3 faults (by the backend's history); 11 per statement 31 µs and none.
 * The listener's backend costs 11-22 µs per notify either way.
 *
 * Small payloads are not cut this way: there this process is the
 * bottleneck, and each statement more costs it more than the server saves
 * (herald's envelopes of 100 B of data, ~256 B each: statements of 48 KiB
 * halved the server's CPU per event, 5.2-6.3 to 2.4-3.0 µs, but took
 * 10-20% more of this process's CPU per event and no more events/s in
 * bench/pg-before-after.ts, interleaved, either way round).
 */
export const LARGE_NOTIFY_BATCH_BYTES = 48 * 1024;

/**
 * The batch statements, prepared once per connection under these names:
 * every later batch skips the server's parse and plan, about 100 µs of the
 * sending backend per statement (issue 24, helper pg24: 20 notifies of
 * 256 B per statement, 7.8-9.8 µs per notify unnamed, 4.0 named), which
 * counts once large payloads go 11 to a statement. A connection that
 * refuses one (a pooler without prepared statements, a DEALLOCATE ALL)
 * refuses the batch, which is then retried one notify at a time, unnamed,
 * as any refused batch is, and the notifier prepares no more.
 */
const PREPARED = new Map<string, string>([
  [SQL_NOTIFY_PACKED_ONE_TOPIC, 'herald_notify_packed_one_topic'],
  [SQL_NOTIFY_PACKED, 'herald_notify_packed'],
]);

/** A queued notify. */
export interface PgOutbound {
  readonly topic: string;
  /** Its text, or its parts (written part by part when the batch is packed). */
  readonly payload: PgPayload;
  /** Known unlike every other payload (it carries a unique id): no folding check. */
  readonly distinct?: boolean;
  settle(sent: boolean, error?: Error): void;
}

/** What the notifier asks of its hub (shared with the LISTEN connection). */
export interface PgNotifierHooks {
  /** Notifies go out only while the LISTEN connection is up (a sender's order holds across outages). */
  isConnected(): boolean;
  /** The reconnect wait, with jitter, for a retry after a connection error. */
  retryDelay(): number;
}

/** The notifier's counters (part of `PgHubStats`). */
export interface PgNotifierCounters {
  notifyCount: number;
  notifyFailCount: number;
  notifyBatchCount: number;
  notifyRetryCount: number;
  notifyCancelCount: number;
  q2Max: number;
}

/**
 * True for errors that mean the connection (not the statement) failed: no
 * server error, or SQLSTATE class 08 (connection exception) / 57P0x (the
 * server shut down or terminated the backend).
 * @publicApi
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof pg.DatabaseError)) return true;
  const code = error.code ?? '';
  return code.startsWith('08') || code.startsWith('57P');
}

/**
 * The sending side of a hub (pg-hub's Q2): a FIFO of notifies sent through
 * the pool, many per statement (one transaction), one batch in flight so a
 * sender's order holds. A batch is cut before a payload already in it
 * (PostgreSQL folds identical pairs of one transaction); a batch the server
 * refuses is retried one notify at a time so one bad notify never sinks its
 * neighbours; a connection error keeps the batch at the head for the next
 * connect.
 *
 * While notifies keep coming it holds one pool client (given back between
 * batches when others wait for the pool) and submits each batch from the
 * answer to the one before, ahead of settling that one's notifies: with
 * `pool.query` and promises the next statement went out only after every
 * reaction to the settled batch had run (the senders' next posts and their
 * encoding, about 10 ms per batch of 1000 on the EventsModule path), and
 * the server sat idle meanwhile.
 */
export class PgNotifier {
  readonly counters: PgNotifierCounters = {
    notifyCount: 0,
    notifyFailCount: 0,
    notifyBatchCount: 0,
    notifyRetryCount: 0,
    notifyCancelCount: 0,
    q2Max: 0,
  };
  private readonly queue = new Fifo<PgOutbound>();
  /** The spell of sending in progress (a client held, batch after batch): resolves when it ends. */
  private sending?: Promise<void>;
  private spellEnded?: () => void;
  /** The pool client held for the spell. */
  private client?: PoolClient;
  private pumpScheduled = false;
  /** How many head items are still to be retried alone after their batch failed. */
  private singles = 0;
  private retryTimer?: NodeJS.Timeout;
  private drainWaiters: (() => void)[] = [];
  /** Batch statements go prepared ({@link PREPARED}) until a connection refuses one. */
  private prepare = true;
  private readonly warnings: WarningLimiter;

  constructor(
    private readonly pool: Pool,
    private readonly batchSize: number,
    private readonly hooks: PgNotifierHooks,
    private readonly logger: HeraldLogger,
    private readonly name: string,
  ) {
    this.warnings = new WarningLimiter(logger);
  }

  /** Notifies queued now. */
  get length(): number {
    return this.queue.length;
  }

  enqueue(item: PgOutbound): void {
    this.queue.push(item);
    if (this.queue.length > this.counters.q2Max) this.counters.q2Max = this.queue.length;
    // Start sending on the next microtask, so a burst of notifies made in one
    // turn of the event loop goes out as one batch.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      queueMicrotask(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  /** The LISTEN connection is (back) up: what failed during the outage goes out now. */
  onConnected(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.pump();
  }

  /** Resolves once the queue is empty and nothing is in flight, or after `timeoutMs`. */
  waitDrained(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0 && !this.sending) return Promise.resolve();
    return new Promise(resolve => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.drainWaiters.push(done);
    });
  }

  /** Stops: waits for the batch in flight, then gives up every queued notify (false). */
  async stop(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.sending;
    for (const item of this.queue.drain()) {
      this.counters.notifyCancelCount++;
      item.settle(false);
    }
  }

  private pump(): void {
    if (this.sending || this.retryTimer || this.queue.length === 0) return;
    if (!this.hooks.isConnected()) return;
    this.sending = new Promise(resolve => (this.spellEnded = resolve));
    this.acquire();
  }

  /**
   * Takes a pool client for the spell: it is held while notifies keep
   * coming, so each batch is submitted from the completion of the one
   * before (see {@link done}). A client that cannot be had fails the next
   * batch as the statement would have.
   */
  private acquire(): void {
    this.pool.connect().then(
      client => {
        client.on('error', this.onClientError);
        this.client = client;
        this.next();
      },
      (error: unknown) => {
        // Cancelled while the pool was asked (stop): nothing left to fail.
        if (this.queue.length === 0) return this.endSpell();
        const batch = this.nextBatch();
        this.counters.notifyBatchCount++;
        this.done(batch, error);
      },
    );
  }

  /** Errors of the held client reach its query's callback too: handled there. */
  private readonly onClientError = (): void => undefined;

  /** Gives the client back (destroyed after a connection error). */
  private release(error?: Error): void {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    client.off('error', this.onClientError);
    client.release(error);
  }

  /** Sends the next batch on the held client, or ends the spell. */
  private next(): void {
    if (this.queue.length === 0 || !this.hooks.isConnected()) return this.endSpell();
    const client = this.client;
    if (!client) return this.acquire();
    if (this.pool.waitingCount > 0) {
      // Others wait for a connection (claims, a small pool): take turns.
      this.release();
      return this.acquire();
    }
    const batch = this.nextBatch();
    this.counters.notifyBatchCount++;
    try {
      this.submit(client, batch, error => this.done(batch, error ?? undefined));
    } catch (error) {
      // Never re-entered synchronously: a queue of refusals would recurse.
      queueMicrotask(() => this.done(batch, error));
    }
  }

  /** The spell is over (nothing queued, or the LISTEN connection down): the client goes back. */
  private endSpell(): void {
    this.release();
    const ended = this.spellEnded;
    this.spellEnded = undefined;
    this.sending = undefined;
    ended?.();
    // Notifies queued while the last batch was settling go out now.
    if (this.hooks.isConnected()) this.pump();
    if (!this.sending) this.notifyDrained();
  }

  /**
   * Takes the next batch from the head: up to `batchSize` notifies and
   * about {@link NOTIFY_BATCH_BYTES} of payloads, {@link LARGE_NOTIFY_BATCH_BYTES}
   * of large ones (at least one notify), cut
   * before a topic+payload pair already in it, because PostgreSQL folds
   * identical pairs of one transaction into one notification.
   */
  private nextBatch(): PgOutbound[] {
    if (this.singles > 0 || this.queue.length === 1) return [this.queue.at(0)!];
    const batch: PgOutbound[] = [];
    // By payload alone: the same payload on two topics also ends the batch,
    // which costs a round trip but never a notification.
    const seen = new Set<string>();
    const limit = Math.min(this.batchSize, this.queue.length);
    let bytes = 0;
    for (let i = 0; i < limit; i++) {
      const item = this.queue.at(i)!;
      // UTF-16 units: the bytes of an ASCII payload, fewer than the bytes of
      // the rest (the cut is about a size, not a limit).
      bytes += payloadLength(item.payload);
      if (
        i > 0 &&
        (bytes > NOTIFY_BATCH_BYTES ||
          (bytes > LARGE_NOTIFY_BATCH_BYTES && bytes >= LARGE_PAYLOAD_BYTES * (i + 1)))
      )
        break;
      if (!item.distinct) {
        const text = payloadText(item.payload);
        if (seen.has(text)) break;
        seen.add(text);
      }
      batch.push(item);
    }
    return batch;
  }

  /**
   * A batch's statement completed (called by node-postgres as it reads the
   * answer). Sent: the next batch is submitted first, then this one's
   * notifies settle, so the server runs the next statement while this
   * process runs what the settled notifies set off (more posts, their
   * encoding), instead of each waiting on the other. Still one batch in
   * flight: a batch is sent only once the one before it is known to have
   * gone out or failed.
   */
  private done(batch: readonly PgOutbound[], error: unknown): void {
    if (error !== undefined) return this.failed(batch, error);
    for (let i = 0; i < batch.length; i++) this.queue.shift();
    if (this.singles > 0) this.singles--;
    this.counters.notifyCount += batch.length;
    if (this.queue.length > 0 && this.hooks.isConnected()) {
      this.next();
      for (let i = 0; i < batch.length; i++) batch[i].settle(true);
    } else {
      // Nothing to send: settle first, as what settling queues goes out in this spell.
      for (let i = 0; i < batch.length; i++) batch[i].settle(true);
      this.next();
    }
  }

  private failed(batch: readonly PgOutbound[], error: unknown): void {
    if (isConnectionError(error)) {
      // The database went away under us: the batch stays at the head and
      // goes out after the next connect, or after reconnectMs if the LISTEN
      // connection never noticed.
      this.warnings.warn(
        'hub-notify-retry',
        logLine(
          'pg',
          'hub-notify-retry',
          `notify of ${batch.length} event(s) failed on the connection, kept and retried: ${describeError(error)}`,
          { hub: this.name, topic: batch[0].topic },
        ),
      );
      this.release(asError(error));
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.pump();
      }, this.hooks.retryDelay());
      this.retryTimer.unref?.();
      return this.endSpell();
    }
    if (batch.length > 1) {
      // A connection whose prepared statement is gone or was never there
      // (a pooler between us and the server, a DEALLOCATE ALL): this
      // notifier stops preparing (node-postgres would go on binding it).
      const code = (error as { code?: unknown } | undefined)?.code;
      if (code === '26000' || code === '42P05') this.prepare = false;
      // One bad notify must not sink its neighbours: retry them one by one.
      this.counters.notifyRetryCount++;
      this.singles = batch.length;
      return this.next();
    }
    const item = this.queue.shift()!;
    if (this.singles > 0) this.singles--;
    this.counters.notifyFailCount++;
    this.warnings.error(
      `notify-refused:${item.topic}`,
      logLine('pg', 'hub-notify-refused', `the server refused a notify: ${describeError(error)}`, {
        hub: this.name,
        topic: item.topic,
      }),
    );
    item.settle(false, error as Error);
    this.next();
  }

  /** Submits a batch's statement on `client`; `callback` runs as node-postgres reads the answer. */
  private submit(
    client: PoolClient,
    batch: readonly PgOutbound[],
    callback: (error: Error | null) => void,
  ): void {
    const [text, values] = this.statement(batch);
    const name = this.prepare ? PREPARED.get(text) : undefined;
    if (name !== undefined) client.query({ name, text, values }, callback);
    else client.query(text, values, callback);
  }

  /** The statement of a batch and its parameters. */
  private statement(batch: readonly PgOutbound[]): [string, unknown[]] {
    if (batch.length === 1)
      return [SQL_NOTIFY_ONE, [batch[0].topic, payloadText(batch[0].payload)]];
    const topic = batch[0].topic;
    let oneTopic = true;
    const payloads = new Array<PgPayload>(batch.length);
    for (let i = 0; i < batch.length; i++) {
      payloads[i] = batch[i].payload;
      if (batch[i].topic !== topic) oneTopic = false;
    }
    const packed = packPayloads(payloads);
    if (packed !== undefined) {
      if (oneTopic) return [SQL_NOTIFY_PACKED_ONE_TOPIC, [topic, packed]];
      // Topics are identifiers: never the separator.
      const topics = batch.map(item => item.topic).join(NOTIFY_SEPARATOR);
      return [SQL_NOTIFY_PACKED, [topics, packed]];
    }
    // A payload with the separator or beyond ASCII: JSON arrays (V8's
    // JSON.stringify escapes strings far faster than node-postgres builds an
    // array literal).
    const texts = payloads.map(payloadText);
    if (oneTopic) return [SQL_NOTIFY_MANY_ONE_TOPIC, [topic, JSON.stringify(texts)]];
    const topics = batch.map(item => item.topic);
    return [SQL_NOTIFY_MANY, [JSON.stringify(topics), JSON.stringify(texts)]];
  }

  private notifyDrained(): void {
    if (this.queue.length > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }
}
