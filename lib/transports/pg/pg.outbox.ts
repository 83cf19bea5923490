import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { describeError } from '../../common/describe-error.js';
import type { Envelope, TransactionClient } from '../../interfaces/envelope.interface.js';
import type { Settlement, TransportContext } from '../../interfaces/transport.interface.js';
import { splitPayload } from './pg.codec.js';
import type { PgEnvelopeCodec } from './pg.envelope-codec.js';
import { PgDecodeError } from './pg.errors.js';
import type { PgHub } from './pg.hub.js';
import { PgOutboxCleanup, type PgOutboxCleanupResult } from './pg.outbox-cleanup.js';
import { PgOutboxReader, type PgOutboxRow } from './pg.outbox-reader.js';
import { ensureOutboxSchema, outboxTables } from './pg.outbox-schema.js';
import { PgOutboxWriter } from './pg.outbox-writer.js';
import type { ResolvedPgDurableOptions } from './pg.outbox.options.js';
import type { PgUniqueClaims } from './pg.unique-claims.js';

/** An error the bus marks `undecodable: true` (an event its schema refused on arrival). */
function isUndecodable(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { undecodable?: unknown }).undecodable === true
  );
}

/** What durable mode takes from its transport. */
export interface PgOutboxParts {
  readonly hub: PgHub;
  readonly channel: string;
  readonly codec: PgEnvelopeCodec;
  readonly claims: PgUniqueClaims;
  /** The hub's options the writer follows. */
  readonly batchSize: number;
  readonly maxQueue: number;
  readonly reconnectMs: number;
}

/** Counters of durable mode's own (the parts add theirs). */
interface PgOutboxCounters {
  delivered: number;
  acked: number;
  nacked: number;
  duplicates: number;
  claimErrors: number;
  undecodable: number;
}

/**
 * Durable mode of the pg transport (`pg: { durable: true }`): the outbox
 * writer, this listener's reader and the retention job, joined. It turns
 * each row the reader hands over into an envelope (undecodable rows go to
 * the dead letters), runs `unique` claims (a failed claim is a nack, so it
 * is retried), hands the envelope to the bus, and passes the bus's settle
 * back to the reader.
 */
export class PgOutbox {
  readonly writer: PgOutboxWriter;
  readonly reader: PgOutboxReader;
  readonly cleanup: PgOutboxCleanup;
  /** This listener's consumer name. */
  readonly consumer: string;
  private readonly ephemeral: boolean;
  private readonly counters: PgOutboxCounters = {
    delivered: 0,
    acked: 0,
    nacked: 0,
    duplicates: 0,
    claimErrors: 0,
    undecodable: 0,
  };
  private context?: TransportContext;

  constructor(
    private readonly parts: PgOutboxParts,
    private readonly options: ResolvedPgDurableOptions,
  ) {
    const tables = outboxTables(options.table);
    const { hub, channel } = parts;
    this.ephemeral = options.consumer === undefined;
    this.consumer =
      options.consumer ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const logger = (): TransportContext['logger'] | undefined => this.context?.logger;
    this.writer = new PgOutboxWriter({
      pool: hub.pool,
      tables,
      channel,
      batchSize: parts.batchSize,
      maxQueue: parts.maxQueue,
      retryDelayMs: () => parts.reconnectMs,
      logger,
    });
    this.reader = new PgOutboxReader({
      pool: hub.pool,
      tables,
      channel,
      consumer: this.consumer,
      readBatch: options.readBatch,
      maxInFlight: options.maxInFlight,
      pollMs: options.pollMs,
      maxAttempts: options.maxAttempts,
      retryDelayMs: options.retryDelayMs,
      refreshMs: Math.max(100, Math.min(options.consumerExpiryMs / 4, 60_000)),
      handle: row => this.handle(row),
      logger: {
        log: message => logger()?.log(message),
        warn: message => logger()?.warn(message),
        error: (message, stack) => logger()?.error(message, stack),
      },
    });
    this.cleanup = new PgOutboxCleanup({
      pool: hub.pool,
      tables,
      channel,
      retentionMs: options.retentionMs,
      retentionCount: options.retentionCount,
      consumerExpiryMs: options.consumerExpiryMs,
      intervalMs: options.cleanupIntervalMs,
      logger,
    });
  }

  /** Creates or checks the tables, registers the consumer, starts reading and the cleanup. */
  async start(context: TransportContext): Promise<void> {
    this.context = context;
    await ensureOutboxSchema(
      this.parts.hub.pool,
      outboxTables(this.options.table),
      this.options.createTables,
    );
    await this.reader.start();
    this.cleanup.start();
  }

  /** Writes posts (resolves with one outcome each; never rejects). */
  write(payloads: readonly string[]): Promise<(boolean | Error)[]> {
    return this.writer.write(payloads);
  }

  /** Writes one post inside your transaction. */
  writeOn(tx: TransactionClient, payload: string): Promise<void> {
    return this.writer.writeOn(tx, payload);
  }

  /** A wake-up NOTIFY, or the LISTEN connection (re)connected: read. */
  wake(): void {
    this.reader.wake();
  }

  runCleanup(): Promise<PgOutboxCleanupResult> {
    return this.cleanup.runOnce();
  }

  stopIntake(): void {
    this.reader.stopIntake();
  }

  /** Waits for queued posts (bounded), stops the parts, writes the cursor a last time. */
  async close(drainMs: number): Promise<void> {
    await this.writer.waitDrained(drainMs);
    this.writer.close();
    await this.cleanup.stop();
    await this.reader.close(this.ephemeral);
  }

  stats(): Record<string, number> {
    return {
      ...this.counters,
      ...this.writer.counters,
      ...this.reader.counters,
      ...this.cleanup.counters,
      inFlight: this.reader.inFlight,
      outboxQueued: this.writer.length,
    };
  }

  private handle(row: PgOutboxRow): void {
    let envelope = row.envelope;
    if (!envelope) {
      try {
        const { key, json } = splitPayload(row.payload);
        envelope = this.parts.codec.decode({ topic: this.parts.channel, key, json, processId: 0 });
      } catch (error) {
        envelope = undefined;
        const reason = error instanceof PgDecodeError ? error.reason : describeError(error);
        this.counters.undecodable++;
        this.reader.settle(row, { outcome: 'dead', reason: `undecodable: ${reason}` });
        return;
      }
      if (!envelope) {
        this.counters.undecodable++;
        this.reader.settle(row, { outcome: 'dead', reason: 'undecodable: bad JSON' });
        return;
      }
      row.envelope = envelope;
    }
    if (envelope.unique === undefined || row.claimed) {
      this.deliver(row, envelope);
      return;
    }
    const ttlMs = this.context?.unique.ttlMs ?? 2000;
    this.parts.claims.claim(`${this.parts.channel}:${envelope.unique}`, envelope.id, ttlMs).then(
      won => {
        if (!won) {
          this.counters.duplicates++;
          this.reader.settle(row, { outcome: 'ack' });
          return;
        }
        row.claimed = true;
        this.deliver(row, envelope);
      },
      error => {
        // At-least-once: without a claim nobody can tell who runs it; try again.
        this.counters.claimErrors++;
        this.reader.settle(row, { outcome: 'nack', error });
      },
    );
  }

  private deliver(row: PgOutboxRow, envelope: Envelope): void {
    const context = this.context;
    if (!context) return;
    this.counters.delivered++;
    context.deliver({
      envelope,
      attempt: row.attempt,
      settle: (settlement: Settlement) => {
        if (settlement.outcome === 'ack') this.counters.acked++;
        else this.counters.nacked++;
        if (settlement.outcome === 'nack' && isUndecodable(settlement.error)) {
          // The bus says no handler can read it (its schema refused it): no retry.
          this.counters.undecodable++;
          this.reader.settle(row, {
            outcome: 'dead',
            reason: `undecodable: ${describeError(settlement.error)}`,
          });
          return;
        }
        this.reader.settle(row, settlement);
      },
    });
  }
}
