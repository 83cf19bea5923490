import pg from 'pg';
import type { Pool } from 'pg';
import type { HeraldLogger } from '../../common/logger.js';
import { describeError } from '../../common/describe-error.js';
import { logLine } from '../../common/log-line.js';

/** A `[schema.]table` name the claims table may have. */
export const PG_TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;

/** `schema.table` -> `"schema"."table"` (parts already checked against {@link PG_TABLE_NAME}). */
export function quoteTable(name: string): string {
  return name
    .split('.')
    .map(part => `"${part}"`)
    .join('.');
}

/** What {@link PgUniqueClaims} needs. */
export interface PgUniqueClaimsOptions {
  readonly pool: Pool;
  /** `[schema.]name`, checked against {@link PG_TABLE_NAME}. */
  readonly table: string;
  /** Claims expired for longer than this are deleted, checked this often, in ms. */
  readonly purgeMs: number;
  /** Longest wait of one claim for a lock (a row another transaction holds), in ms. */
  readonly timeoutMs: number;
  readonly logger: () => HeraldLogger | undefined;
}

/**
 * The `unique` claims of the pg transport: one row per key in an UNLOGGED
 * table, inserted on the database's clock, so exactly one receiver (and
 * only the first post within the TTL) wins a key.
 *
 * Claims of different keys run side by side; claims of one key run in
 * arrival order (every receiver sees a sender's posts in posting order, so
 * the first post of a key is the one that wins, never a later repeat). A
 * claim waits at most `timeoutMs` for a lock (`lock_timeout` and
 * `statement_timeout` set for its statement alone): a row held by someone
 * else's transaction fails that claim, never the ones behind it.
 */
export class PgUniqueClaims {
  private tableReady?: Promise<void>;
  private readonly chains = new Map<string, Promise<unknown>>();
  private lastPurge = 0;

  constructor(private readonly options: PgUniqueClaimsOptions) {}

  /**
   * Claims `key` for `ttlMs`: true for the one receiver that inserted the
   * row (or found it expired), false for every other receiver and for
   * repeats within the TTL. Rejects when the claim could not be made.
   */
  claim(key: string, id: string, ttlMs: number): Promise<boolean> {
    const before = this.chains.get(key) ?? Promise.resolve();
    const claimed = before.then(() => this.insert(key, id, ttlMs));
    const tail = claimed.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return claimed;
  }

  private async insert(key: string, id: string, ttlMs: number): Promise<boolean> {
    this.tableReady ??= this.createTable().catch(error => {
      this.tableReady = undefined;
      throw error;
    });
    await this.tableReady;
    const table = quoteTable(this.options.table);
    const timeout = Math.max(1, Math.round(this.options.timeoutMs));
    // One simple-protocol query of three statements runs as one implicit
    // transaction, so the timeouts set (is_local) hold for this INSERT
    // alone. Simple protocol takes no parameters: the values are literals,
    // escaped by the driver.
    const sql =
      `SELECT pg_catalog.set_config('lock_timeout', '${timeout}', true), ` +
      `pg_catalog.set_config('statement_timeout', '${timeout}', true); ` +
      `INSERT INTO ${table} AS c (key, id, expires_at) VALUES ` +
      `(${pg.escapeLiteral(key)}, ${pg.escapeLiteral(id)}, now() + ${Math.round(ttlMs)} * interval '1 millisecond') ` +
      'ON CONFLICT (key) DO UPDATE SET id = EXCLUDED.id, expires_at = EXCLUDED.expires_at ' +
      // An expired claim is taken over by a later post, never by a slow
      // receiver of the very event that made it.
      'WHERE c.expires_at <= now() AND c.id <> EXCLUDED.id RETURNING 1';
    const results = (await this.options.pool.query(sql)) as unknown as {
      rowCount: number | null;
    }[];
    this.purge();
    return results[results.length - 1].rowCount === 1;
  }

  private async createTable(): Promise<void> {
    try {
      await this.options.pool.query(
        `CREATE UNLOGGED TABLE IF NOT EXISTS ${quoteTable(this.options.table)} ` +
          '(key text PRIMARY KEY, id text NOT NULL, expires_at timestamptz NOT NULL)',
      );
    } catch (error) {
      // Two instances creating it at once: the loser sees a duplicate; the table is there.
      const code = (error as { code?: string }).code;
      if (code !== '23505' && code !== '42P07') throw error;
    }
  }

  /**
   * Deletes claims expired for longer than `purgeMs`, at most once per
   * `purgeMs`, so the table stays small (the grace keeps a claim for
   * receivers that are late with the same event).
   */
  private purge(): void {
    const now = Date.now();
    if (now - this.lastPurge < this.options.purgeMs) return;
    this.lastPurge = now;
    this.options.pool
      .query(
        `DELETE FROM ${quoteTable(this.options.table)} WHERE expires_at < now() - $1::int * interval '1 millisecond'`,
        [Math.round(this.options.purgeMs)],
      )
      .catch(error =>
        this.options
          .logger()
          ?.warn(
            logLine(
              'pg',
              'unique-claims-purge-failed',
              `purge of expired unique claims failed (retried after uniquePurgeMs): ${describeError(error)}`,
              { table: this.options.table },
            ),
          ),
      );
  }
}
