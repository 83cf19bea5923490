import type { Pool, PoolClient } from 'pg';
import { describeError } from '../../common/describe-error.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import type { PgOutboxTables } from './pg.outbox-schema.js';

/** What one cleanup run did. @publicApi */
export interface PgOutboxCleanupResult {
  /** False when another instance was running the cleanup of this channel (nothing done). */
  readonly ran: boolean;
  /** Outbox rows deleted (older than retentionMs, or beyond retentionCount). */
  readonly deleted: number;
  /** Consumers removed as unseen for consumerExpiryMs. */
  readonly expired: readonly string[];
  /** Per live consumer: rows deleted before it read them. */
  readonly lost: Readonly<Record<string, number>>;
}

/** The cleanup's counters (part of the transport's stats). */
export interface PgOutboxCleanupCounters {
  cleanupRuns: number;
  outboxDeleted: number;
  consumersExpired: number;
  /** Rows deleted before a live consumer read them, over all consumers (as this instance's runs found). */
  lostRecorded: number;
}

/** What the cleanup needs. */
export interface PgOutboxCleanupOptions {
  readonly pool: Pool;
  readonly tables: PgOutboxTables;
  readonly channel: string;
  readonly retentionMs: number;
  readonly retentionCount: number;
  readonly consumerExpiryMs: number;
  /** 0: never on its own (runOnce still works). */
  readonly intervalMs: number;
  readonly logger: () => HeraldLogger | undefined;
}

/** Rows deleted per statement (each its own short transaction). */
const CHUNK = 10_000;

/**
 * The retention job of durable mode, for one channel: removes consumers
 * unseen for `consumerExpiryMs`, then deletes outbox rows older than
 * `retentionMs` or beyond the newest `retentionCount`, in chunks. Every
 * deleted row a remaining (live) consumer had not read yet is added to that
 * consumer's `lost` (the consumer counts and logs it at its next cursor
 * write) and logged here. Instances run it under a session advisory lock
 * per outbox and channel: one at a time, the others skip the run.
 */
export class PgOutboxCleanup {
  readonly counters: PgOutboxCleanupCounters = {
    cleanupRuns: 0,
    outboxDeleted: 0,
    consumersExpired: 0,
    lostRecorded: 0,
  };
  private timer?: NodeJS.Timeout;
  private running?: Promise<PgOutboxCleanupResult>;
  private readonly sql: { expire: string; remove: string };

  constructor(private readonly options: PgOutboxCleanupOptions) {
    const { outbox, consumers } = options.tables;
    const ms = (n: string): string => `pg_catalog.now() - ${n}::float8 * interval '1 millisecond'`;
    this.sql = {
      expire: `DELETE FROM ${consumers} WHERE channel = $1 AND seen_at < ${ms('$2')} RETURNING name`,
      remove:
        `WITH cut AS (SELECT id FROM ${outbox} WHERE channel = $1 ORDER BY id DESC OFFSET $3 LIMIT 1), ` +
        `doomed AS (DELETE FROM ${outbox} o WHERE o.ctid = ANY(ARRAY(SELECT ctid FROM ${outbox} ` +
        `WHERE channel = $1 AND (created_at < ${ms('$2')} OR id <= (SELECT id FROM cut)) LIMIT $4)) ` +
        'RETURNING o.xid, o.id), ' +
        `per AS (SELECT c.name, count(*) AS n FROM ${consumers} c JOIN doomed d ON (d.xid, d.id) > (c.xid, c.id) ` +
        'WHERE c.channel = $1 GROUP BY c.name), ' +
        `upd AS (UPDATE ${consumers} c SET lost = c.lost + per.n FROM per ` +
        'WHERE c.channel = $1 AND c.name = per.name RETURNING c.name, per.n) ' +
        'SELECT (SELECT count(*) FROM doomed)::int AS deleted, ' +
        "COALESCE((SELECT pg_catalog.json_object_agg(name, n) FROM upd), '{}'::json) AS lost",
    };
  }

  /** Runs every `intervalMs` (unless 0). */
  start(): void {
    if (this.options.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (!this.running) void this.runOnce().catch(() => undefined);
    }, this.options.intervalMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One run now (waits for a run in progress first). Rejects when the database fails it. */
  async runOnce(): Promise<PgOutboxCleanupResult> {
    await this.running?.catch(() => undefined);
    this.running = this.run().catch(error => {
      this.options.logger()?.warn(
        logLine('pg', 'outbox-cleanup-failed', describeError(error), {
          channel: this.options.channel,
        }),
      );
      throw error;
    });
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async run(): Promise<PgOutboxCleanupResult> {
    const { pool, channel, tables } = this.options;
    const client = await pool.connect();
    const lockArgs = ['herald_outbox_cleanup', `${tables.name}:${channel}`];
    const lock = 'pg_catalog.hashtext($1), pg_catalog.hashtext($2)';
    let locked = false;
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        `SELECT pg_catalog.pg_try_advisory_lock(${lock}) AS locked`,
        lockArgs,
      );
      locked = rows[0].locked;
      if (!locked) return { ran: false, deleted: 0, expired: [], lost: {} };
      this.counters.cleanupRuns++;
      const expired = await this.expire(client);
      let deleted = 0;
      const lost: Record<string, number> = {};
      for (;;) {
        const { rows: out } = await client.query<{
          deleted: number;
          lost: Record<string, string | number>;
        }>(this.sql.remove, [
          channel,
          this.options.retentionMs,
          this.options.retentionCount,
          CHUNK,
        ]);
        deleted += out[0].deleted;
        for (const [name, n] of Object.entries(out[0].lost))
          lost[name] = (lost[name] ?? 0) + Number(n);
        if (out[0].deleted < CHUNK) break;
      }
      this.counters.outboxDeleted += deleted;
      const logger = this.options.logger();
      for (const [consumer, count] of Object.entries(lost)) {
        this.counters.lostRecorded += count;
        logger?.warn(
          logLine(
            'pg',
            'outbox-retention-lost',
            `retention removed ${count} event(s) consumer ${consumer} had not read yet ` +
              `(retentionMs ${this.options.retentionMs}, retentionCount ${this.options.retentionCount})`,
            { channel, consumer, table: tables.name },
          ),
        );
      }
      return { ran: true, deleted, expired, lost };
    } finally {
      if (locked)
        await client
          .query(`SELECT pg_catalog.pg_advisory_unlock(${lock})`, lockArgs)
          .catch(() => undefined);
      client.release();
    }
  }

  private async expire(client: PoolClient): Promise<string[]> {
    const { channel, consumerExpiryMs } = this.options;
    const { rows } = await client.query<{ name: string }>(this.sql.expire, [
      channel,
      consumerExpiryMs,
    ]);
    const names = rows.map(row => row.name);
    this.counters.consumersExpired += names.length;
    for (const consumer of names) {
      this.options
        .logger()
        ?.warn(
          logLine(
            'pg',
            'outbox-consumer-expired',
            `consumer unseen for more than ${consumerExpiryMs} ms removed; if it comes back it starts at the end`,
            { channel, consumer },
          ),
        );
    }
    return names;
  }
}
