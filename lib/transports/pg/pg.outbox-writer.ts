import type { Pool } from 'pg';
import { describeError, asError } from '../../common/describe-error.js';
import { QueueFullError, TransportClosedError } from '../../common/errors.js';
import { Fifo } from '../../common/fifo.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import type { TransactionClient } from '../../interfaces/envelope.interface.js';
import { isConnectionError } from './pg.notifier.js';
import { packPayloads } from './pg.packed-payloads.js';
import type { PgOutboxTables } from './pg.outbox-schema.js';

/** The payload of the wake-up NOTIFY: an empty pg-hub event (readers ignore it). */
export const PG_OUTBOX_WAKE = 'e';

/** The writer's counters (part of the transport's stats). */
export interface PgOutboxWriterCounters {
  /** Rows committed to the outbox (batches and transactions of yours). */
  outboxWritten: number;
  /** INSERT statements sent (round trips), retries included. */
  outboxBatches: number;
  /** Batches retried after a connection error (a batch may then be written twice: at-least-once). */
  outboxRetries: number;
}

interface Pending {
  readonly payload: string;
  settle(outcome: true | Error | false): void;
}

/** What the writer needs. */
export interface PgOutboxWriterOptions {
  readonly pool: Pool;
  readonly tables: PgOutboxTables;
  readonly channel: string;
  readonly batchSize: number;
  readonly maxQueue: number;
  readonly retryDelayMs: () => number;
  readonly logger: () => HeraldLogger | undefined;
}

/**
 * The write path of durable mode: each event becomes an outbox row, and the
 * rows of a batch and one wake-up NOTIFY go in one statement, so in one
 * transaction: a row is never visible without its wake-up having been
 * sent at commit, and the NOTIFY carries nothing a listener could miss.
 * Posts made in one turn of the event loop form one batch; one batch is in
 * flight at a time (a sender's rows get increasing transaction ids, so
 * readers see a sender's posts in posting order). A connection error keeps
 * the batch and retries it after `retryDelayMs` until close: the batch may
 * have committed, so it may be written twice (at-least-once).
 */
export class PgOutboxWriter {
  readonly counters: PgOutboxWriterCounters = {
    outboxWritten: 0,
    outboxBatches: 0,
    outboxRetries: 0,
  };
  private readonly queue = new Fifo<Pending>();
  private readonly insertMany: string;
  private readonly insertPacked: string;
  private readonly insertOne: string;
  private sending = false;
  private scheduled = false;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly options: PgOutboxWriterOptions) {
    const table = options.tables.outbox;
    this.insertMany =
      `WITH ins AS (INSERT INTO ${table} (channel, payload) ` +
      'SELECT $1, a.p FROM pg_catalog.json_array_elements_text($2::json) WITH ORDINALITY AS a(p, n) ' +
      `ORDER BY a.n) SELECT pg_catalog.pg_notify($1, '${PG_OUTBOX_WAKE}')`;
    // The same with the payloads packed (pg.packed-payloads.ts); the JSON
    // array above stays for a batch with a payload beyond ASCII.
    this.insertPacked =
      `WITH ins AS (INSERT INTO ${table} (channel, payload) ` +
      'SELECT $1, a.p FROM pg_catalog.unnest(pg_catalog.string_to_array($2::text, pg_catalog.chr(30))) ' +
      'WITH ORDINALITY AS a(p, n) ' +
      `ORDER BY a.n) SELECT pg_catalog.pg_notify($1, '${PG_OUTBOX_WAKE}')`;
    this.insertOne =
      `WITH ins AS (INSERT INTO ${table} (channel, payload) VALUES ($1, $2)) ` +
      `SELECT pg_catalog.pg_notify($1, '${PG_OUTBOX_WAKE}')`;
  }

  /** Posts queued or in flight. */
  get length(): number {
    return this.queue.length;
  }

  /**
   * Writes many payloads, in order; resolves once every one settled, with
   * true (committed), false (closed first) or the error that refused it.
   * Never rejects.
   */
  write(payloads: readonly string[]): Promise<(boolean | Error)[]> {
    const outcomes = new Array<boolean | Error>(payloads.length);
    let pending = 0;
    let done!: () => void;
    const all = new Promise<void>(resolve => (done = resolve));
    for (let i = 0; i < payloads.length; i++) {
      if (this.closed) {
        outcomes[i] = new TransportClosedError('pg transport is closed');
        continue;
      }
      if (this.queue.length >= this.options.maxQueue) {
        outcomes[i] = new QueueFullError('pg outbox', this.options.maxQueue);
        continue;
      }
      pending++;
      this.queue.push({
        payload: payloads[i],
        settle: outcome => {
          outcomes[i] = outcome;
          if (--pending === 0) done();
        },
      });
    }
    this.schedule();
    if (pending === 0) return Promise.resolve(outcomes);
    return all.then(() => outcomes);
  }

  /**
   * Writes one payload on your client, inside your transaction: the row and
   * the wake-up commit (or roll back) with it.
   */
  async writeOn(tx: TransactionClient, payload: string): Promise<void> {
    await tx.query(this.insertOne, [this.options.channel, payload]);
  }

  /** Resolves once the queue is empty, or after `timeoutMs`. */
  waitDrained(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0 && !this.sending) return Promise.resolve();
    return new Promise(resolve => {
      const timer = setTimeout(finish, timeoutMs);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      this.drainWaiters.push(finish);
    });
  }

  /** Stops: what is still queued settles with false. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.sending) this.cancelRest();
  }

  private cancelRest(): void {
    for (const item of this.queue.drain()) item.settle(false);
    this.drained();
  }

  private schedule(): void {
    if (this.scheduled || this.sending || this.retryTimer) return;
    this.scheduled = true;
    // A burst posted in one turn of the event loop goes out as one batch.
    queueMicrotask(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.sending || this.retryTimer) return;
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const size = Math.min(this.options.batchSize, this.queue.length);
        const payloads = new Array<string>(size);
        for (let i = 0; i < size; i++) payloads[i] = this.queue.at(i)!.payload;
        this.counters.outboxBatches++;
        try {
          if (size === 1)
            await this.options.pool.query(this.insertOne, [this.options.channel, payloads[0]]);
          else {
            const packed = packPayloads(payloads);
            await this.options.pool.query(
              packed === undefined ? this.insertMany : this.insertPacked,
              [this.options.channel, packed ?? JSON.stringify(payloads)],
            );
          }
        } catch (error) {
          if (isConnectionError(error)) {
            this.counters.outboxRetries++;
            this.options
              .logger()
              ?.warn(
                logLine(
                  'pg',
                  'outbox-write-retry',
                  `outbox write of ${size} event(s) failed, retrying: ${describeError(error)}`,
                  { channel: this.options.channel },
                ),
              );
            this.retryTimer = setTimeout(() => {
              this.retryTimer = undefined;
              void this.pump();
            }, this.options.retryDelayMs());
            this.retryTimer.unref?.();
            return;
          }
          // Refused by the server (a bad row, a missing privilege): these posts fail.
          const refused = asError(error);
          this.options
            .logger()
            ?.error(
              logLine(
                'pg',
                'outbox-write-refused',
                `outbox write of ${size} event(s) refused: ${describeError(error)}`,
                { channel: this.options.channel },
              ),
            );
          for (let i = 0; i < size; i++) this.queue.shift()!.settle(refused);
          continue;
        }
        this.counters.outboxWritten += size;
        for (let i = 0; i < size; i++) this.queue.shift()!.settle(true);
      }
    } finally {
      this.sending = false;
      if (this.closed) this.cancelRest();
      else this.drained();
    }
  }

  private drained(): void {
    if (this.queue.length > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }
}
