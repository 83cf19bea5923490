// The read path of durable mode: one consumer's cursor over the outbox, its
// reads, the window of delivered rows, retries, dead letters and the cursor's
// writes. About 400 lines: these share the window and the cursor, and a split
// would pass both back and forth.
import type { Pool } from 'pg';
import { describeError } from '../../common/describe-error.js';
import { Fifo } from '../../common/fifo.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type { PgOutboxTables } from './pg.outbox-schema.js';

/** One outbox row in this consumer's window. */
export interface PgOutboxRow {
  /** The row's id (insert order), as text. */
  readonly id: string;
  /** The inserting transaction's id (xid8), as text. */
  readonly xid: string;
  readonly payload: string;
  /** 1 on the first delivery, more on retries after a nack. */
  attempt: number;
  settled: boolean;
  /** Set by the owner: the envelope once decoded, the unique claim once won. */
  envelope?: Envelope;
  claimed?: boolean;
}

/** How the owner ended one delivery of a row. */
export type PgOutboxOutcome =
  | { readonly outcome: 'ack' }
  | { readonly outcome: 'nack'; readonly error: unknown }
  /** Straight to the dead letters (an undecodable row). */
  | { readonly outcome: 'dead'; readonly reason: string };

/** The reader's counters (part of the transport's stats). */
export interface PgOutboxReaderCounters {
  /** Read statements run. */
  outboxReads: number;
  /** Rows read and handed on (first deliveries). */
  outboxRead: number;
  /** Reads that stopped at the snapshot horizon (a committed row waits for an older open transaction). */
  outboxHeldBack: number;
  /** Deliveries after a nack. */
  redelivered: number;
  /** Rows moved to the dead-letter table. */
  deadLettered: number;
  /** Rows the cleanup job removed before this consumer read them (as reported to it). */
  lost: number;
  /** Cursor writes. */
  cursorWrites: number;
  /** Read or cursor writes that failed (retried). */
  outboxErrors: number;
}

/** What the reader needs. */
export interface PgOutboxReaderOptions {
  readonly pool: Pool;
  readonly tables: PgOutboxTables;
  readonly channel: string;
  readonly consumer: string;
  readonly readBatch: number;
  readonly maxInFlight: number;
  readonly pollMs: number;
  readonly maxAttempts: number;
  readonly retryDelayMs: number;
  /** The cursor is written at least this often, so the consumer counts as seen. */
  readonly refreshMs: number;
  /** Hands a row to the owner, which calls `settle(row, outcome)` once per delivery. */
  readonly handle: (row: PgOutboxRow) => void;
  readonly logger: HeraldLogger;
}

interface Cursor {
  xid: string;
  id: string;
}

/** First wait of a read held back by the horizon, doubled up to pollMs. */
const HELD_FIRST_MS = 5;

/**
 * One consumer's reading of the outbox. **Visibility rule**: a read takes
 * the rows after the cursor in `(xid, id)` order whose transaction id is
 * below its snapshot's `xmin` (`pg_snapshot_xmin(pg_current_snapshot())`):
 * every transaction below it has ended, so no row can appear behind the
 * cursor later, whatever order transactions commit in. A committed row of
 * a transaction younger than one still open waits (`outboxHeldBack`) and is
 * read once that one ends, re-polled from 5 ms up to `pollMs`.
 *
 * Rows are handed on in that order; the cursor written to the consumers
 * table is the last row of the settled prefix (acked, or dead-lettered), so
 * after a crash or a restart the rows delivered but not yet settled come
 * again (at-least-once). A nacked row is delivered again after
 * `retryDelayMs`, up to `maxAttempts` deliveries, then moved to the
 * dead-letter table with the reason.
 */
export class PgOutboxReader {
  readonly counters: PgOutboxReaderCounters = {
    outboxReads: 0,
    outboxRead: 0,
    outboxHeldBack: 0,
    redelivered: 0,
    deadLettered: 0,
    lost: 0,
    cursorWrites: 0,
    outboxErrors: 0,
  };
  private readonly window = new Fifo<PgOutboxRow>();
  private readonly warnings: WarningLimiter;
  private readonly sql: { read: string; write: string; insert: string; dead: string };
  /** The last row read (reads go on from here). */
  private readCursor: Cursor = { xid: '0', id: '0' };
  /** The last row of the settled prefix (written to the table). */
  private ackCursor: Cursor = { xid: '0', id: '0' };
  private registered = false;
  private reading?: Promise<void>;
  private wanted = false;
  private intake = false;
  private closed = false;
  private heldDelay = 0;
  private heldTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  private refreshTimer?: NodeJS.Timeout;
  private errorTimer?: NodeJS.Timeout;
  private writing?: Promise<void>;
  private dirty = false;
  private readonly retries = new Set<NodeJS.Timeout>();

  constructor(private readonly options: PgOutboxReaderOptions) {
    this.warnings = new WarningLimiter(options.logger);
    const { outbox, consumers, dead } = options.tables;
    const after = '(o.xid, o.id) > ($2::xid8, $3::bigint)';
    this.sql = {
      // One snapshot: the rows below its horizon, and a marker row when a
      // committed row above it waits for an older transaction.
      read:
        'WITH s AS MATERIALIZED (SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) AS h) ' +
        `(SELECT o.id::text AS id, o.xid::text AS xid, o.payload FROM ${outbox} o ` +
        `WHERE o.channel = $1 AND ${after} AND o.xid < (SELECT h FROM s) ORDER BY o.xid, o.id LIMIT $4) ` +
        // Every row at or above the horizon is unread (rows read were below an older one).
        `UNION ALL (SELECT NULL, NULL, NULL FROM ${outbox} o ` +
        'WHERE o.channel = $1 AND o.xid >= (SELECT h FROM s) ORDER BY o.xid LIMIT 1)',
      // Takes (and zeroes) the losses the cleanup job recorded, under the row lock.
      write:
        `UPDATE ${consumers} c SET xid = $3::xid8, id = $4::bigint, seen_at = pg_catalog.now(), lost = 0 ` +
        `FROM (SELECT lost FROM ${consumers} WHERE channel = $1 AND name = $2 FOR UPDATE) old ` +
        'WHERE c.channel = $1 AND c.name = $2 RETURNING old.lost::text AS lost',
      // A new consumer starts at the horizon: every transaction still open is ahead of it.
      insert:
        `INSERT INTO ${consumers} AS c (channel, name, xid, id) ` +
        'SELECT $1, $2, COALESCE($3::xid8, pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())), COALESCE($4::bigint, 0) ' +
        'ON CONFLICT (channel, name) DO UPDATE SET seen_at = pg_catalog.now() ' +
        'RETURNING c.xid::text AS xid, c.id::text AS id, c.lost::text AS lost, (c.xmax = 0) AS created',
      dead:
        `INSERT INTO ${dead} (channel, consumer, id, xid, payload, attempts, reason) ` +
        'VALUES ($1, $2, $3::bigint, $4::xid8, $5, $6, $7)',
    };
  }

  /** Rows delivered and not yet settled. */
  get inFlight(): number {
    return this.window.length;
  }

  /** The cursor last written (the settled prefix), for tests and diagnostics. */
  get cursor(): Readonly<Cursor> {
    return this.ackCursor;
  }

  /**
   * Registers the consumer (or finds its cursor), then starts reading: at
   * once (the catch-up), on every `wake()`, and every `pollMs`.
   */
  async start(): Promise<void> {
    await this.register(undefined);
    this.intake = true;
    this.pollTimer = setInterval(() => this.wake(), this.options.pollMs);
    this.pollTimer.unref?.();
    this.refreshTimer = setInterval(() => this.writeSoon(), this.options.refreshMs);
    this.refreshTimer.unref?.();
    this.wake();
  }

  /** Something may have been committed (a wake-up NOTIFY, a reconnect): read. */
  wake(): void {
    this.wanted = true;
    if (this.reading || !this.intake) return;
    // Set before the loop's first await; cleared in a later microtask, so a
    // loop that ends at once never leaves a stale promise behind.
    this.reading = this.readLoop().finally(() => {
      this.reading = undefined;
      if (this.wanted && this.intake && this.window.length < this.options.maxInFlight) this.wake();
    });
  }

  /** Stops reading; settles still move the cursor. */
  stopIntake(): void {
    this.intake = false;
    for (const timer of [this.heldTimer, this.pollTimer, this.errorTimer]) clearTimeout(timer);
    clearInterval(this.pollTimer);
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
  }

  /** Stops, writes the cursor a last time; `remove` deletes the consumer (a per-process one). */
  async close(remove: boolean): Promise<void> {
    this.stopIntake();
    clearInterval(this.refreshTimer);
    await this.reading;
    this.closed = true;
    if (!this.registered) return;
    // One last write, never beside another (a later write must not be overtaken by an older one).
    this.dirty = true;
    while (this.writing) await this.writing;
    if (this.dirty) await (this.writing = this.writeCursor());
    if (remove) {
      await this.options.pool
        .query(`DELETE FROM ${this.options.tables.consumers} WHERE channel = $1 AND name = $2`, [
          this.options.channel,
          this.options.consumer,
        ])
        .catch(error =>
          this.warnings.warn(
            'outbox-consumer-remove-failed',
            logLine('pg', 'outbox-consumer-remove-failed', describeError(error), this.logFields()),
          ),
        );
    }
    this.warnings.flush();
  }

  /** Ends one delivery of a row. */
  settle(row: PgOutboxRow, outcome: PgOutboxOutcome): void {
    if (row.settled) return;
    if (outcome.outcome === 'ack') return this.done(row);
    if (outcome.outcome === 'dead') return void this.deadLetter(row, outcome.reason);
    if (row.attempt >= this.options.maxAttempts) {
      void this.deadLetter(
        row,
        `handler failed ${row.attempt} time(s) (maxAttempts ${this.options.maxAttempts}): ${describeError(outcome.error)}`,
      );
      return;
    }
    if (!this.intake) return; // redelivered after the restart, from the cursor
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      if (!this.intake || row.settled) return;
      row.attempt++;
      this.counters.redelivered++;
      this.options.handle(row);
    }, this.options.retryDelayMs);
    timer.unref?.();
    this.retries.add(timer);
  }

  private async register(at: Cursor | undefined): Promise<void> {
    const { rows } = await this.options.pool.query<{
      xid: string;
      id: string;
      lost: string;
      created: boolean;
    }>(this.sql.insert, [
      this.options.channel,
      this.options.consumer,
      at?.xid ?? null,
      at?.id ?? null,
    ]);
    const row = rows[0];
    if (!this.registered) {
      this.readCursor = { xid: row.xid, id: row.id };
      this.ackCursor = { ...this.readCursor };
    }
    this.registered = true;
    // Losses recorded while this consumer was away are told at the next cursor write.
    if (row.lost !== '0') this.writeSoon();
  }

  private async readLoop(): Promise<void> {
    while (this.wanted && this.intake) {
      const room = this.options.maxInFlight - this.window.length;
      if (room <= 0) return; // done() wakes the reader again
      this.wanted = false;
      const limit = Math.min(this.options.readBatch, room);
      let rows: { id: string | null; xid: string | null; payload: string | null }[];
      try {
        this.counters.outboxReads++;
        ({ rows } = await this.options.pool.query(this.sql.read, [
          this.options.channel,
          this.readCursor.xid,
          this.readCursor.id,
          limit,
        ]));
      } catch (error) {
        this.counters.outboxErrors++;
        this.warnings.warn(
          'outbox-read-failed',
          logLine('pg', 'outbox-read-failed', describeError(error), this.logFields()),
        );
        this.retryLater();
        return;
      }
      let held = false;
      let got = 0;
      for (const found of rows) {
        if (found.id === null) {
          held = true;
          continue;
        }
        got++;
        const row: PgOutboxRow = {
          id: found.id,
          xid: found.xid!,
          payload: found.payload!,
          attempt: 1,
          settled: false,
        };
        this.readCursor = { xid: row.xid, id: row.id };
        this.window.push(row);
        this.counters.outboxRead++;
        if (!this.intake) break;
        this.options.handle(row);
      }
      if (got === limit) this.wanted = true;
      if (held) this.holdBack();
      else this.heldDelay = 0;
    }
  }

  /** A committed row waits for an older open transaction: read again soon. */
  private holdBack(): void {
    this.counters.outboxHeldBack++;
    if (this.heldTimer) return;
    this.heldDelay = Math.min(
      this.options.pollMs,
      this.heldDelay === 0 ? HELD_FIRST_MS : this.heldDelay * 2,
    );
    this.heldTimer = setTimeout(() => {
      this.heldTimer = undefined;
      this.wake();
    }, this.heldDelay);
    this.heldTimer.unref?.();
  }

  private retryLater(): void {
    if (this.errorTimer || !this.intake) return;
    this.errorTimer = setTimeout(
      () => {
        this.errorTimer = undefined;
        this.wake();
      },
      Math.max(100, this.options.retryDelayMs),
    );
    this.errorTimer.unref?.();
  }

  private done(row: PgOutboxRow): void {
    row.settled = true;
    let moved = false;
    while (this.window.length > 0 && this.window.at(0)!.settled) {
      const head = this.window.shift()!;
      this.ackCursor = { xid: head.xid, id: head.id };
      moved = true;
    }
    if (moved) this.writeSoon();
    if (this.intake && !this.reading && this.window.length < this.options.maxInFlight) this.wake();
  }

  private async deadLetter(row: PgOutboxRow, reason: string): Promise<void> {
    const { channel, consumer } = this.options;
    try {
      await this.options.pool.query(this.sql.dead, [
        channel,
        consumer,
        row.id,
        row.xid,
        row.payload,
        row.attempt,
        reason,
      ]);
    } catch (error) {
      // Not moved: the row stays unsettled, so it comes again after a restart.
      this.counters.outboxErrors++;
      this.warnings.warn(
        'outbox-dead-letter-failed',
        logLine(
          'pg',
          'outbox-dead-letter-failed',
          describeError(error),
          this.logFields({ outboxId: row.id }),
        ),
      );
      if (this.intake) {
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          void this.deadLetter(row, reason);
        }, this.options.retryDelayMs);
        timer.unref?.();
        this.retries.add(timer);
      }
      return;
    }
    this.counters.deadLettered++;
    const envelope = row.envelope;
    this.warnings.warn(
      'outbox-dead-lettered',
      logLine(
        'pg',
        'outbox-dead-lettered',
        `event moved to ${this.options.tables.dead}: ${reason}`,
        {
          source: envelope?.source,
          event: envelope?.event,
          id: envelope?.id,
          outboxId: row.id,
          consumer,
        },
      ),
    );
    this.done(row);
  }

  /** Writes the cursor soon (one write in flight; later changes ride the next). */
  private writeSoon(): void {
    this.dirty = true;
    if (!this.writing && this.registered) this.writing = this.writeCursor();
  }

  private async writeCursor(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        const at = this.ackCursor;
        const { channel, consumer } = this.options;
        let lost: string | undefined;
        try {
          this.counters.cursorWrites++;
          const { rows } = await this.options.pool.query<{ lost: string }>(this.sql.write, [
            channel,
            consumer,
            at.xid,
            at.id,
          ]);
          lost = rows[0]?.lost;
          if (lost === undefined) {
            // Removed by the cleanup job (unseen for consumerExpiryMs): take the place again.
            this.options.logger.warn(
              logLine(
                'pg',
                'outbox-consumer-reregistered',
                'consumer was removed as expired while running; registered again at its cursor',
                { channel, consumer },
              ),
            );
            await this.register(at);
          }
        } catch (error) {
          this.counters.outboxErrors++;
          this.warnings.warn(
            'outbox-cursor-write-failed',
            logLine('pg', 'outbox-cursor-write-failed', describeError(error), this.logFields()),
          );
          this.dirty = true;
          if (this.closed) return;
          await new Promise(resolve =>
            setTimeout(resolve, Math.max(100, this.options.retryDelayMs)),
          );
          continue;
        }
        const count = Number(lost ?? 0);
        if (count > 0) {
          this.counters.lost += count;
          this.options.logger.warn(
            logLine(
              'pg',
              'outbox-lost',
              `${count} event(s) were removed by the outbox retention before this consumer read them`,
              { channel, consumer },
            ),
          );
        }
      }
    } finally {
      this.writing = undefined;
    }
  }

  /** What names this reader in its log lines, plus the line's own fields. */
  private logFields(fields: Record<string, string> = {}): Record<string, string> {
    return { channel: this.options.channel, consumer: this.options.consumer, ...fields };
  }
}
