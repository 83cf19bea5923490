import { randomUUID } from 'node:crypto';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { Envelope } from '../../bus/envelope.interface.js';
import { InvalidOptionsError, TransportClosedError } from '../../bus/errors.js';
import type {
  Delivery,
  PublishResult,
  Settlement,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportStatus,
} from '../transport.interface.js';
import { isAdvisory, type PgHubEvent } from './pg.advisory.js';
import { encodePayload, validateTopic } from './pg.codec.js';
import { PG_NOTIFY_MAX_PAYLOAD } from './pg.constants.js';
import type { PgConsumer } from './pg.consumer.js';
import { PgHub, type PgHubState } from './pg.hub.js';
import type { PgTransportOptions } from './pg.options.js';

const ACCEPTED: PublishResult = Object.freeze({ ok: true });
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;

/**
 * The herald envelope as it travels in a pg-hub value: `herald` marks it
 * (version 1), `data` is the codec's JSON text, embedded as is and last.
 */
interface WireEnvelope {
  herald: 1;
  id: string;
  source: string;
  event: string;
  origin: string;
  at: string;
  unique?: string;
  headers?: Readonly<Record<string, string>>;
  data?: unknown;
}

/** One received envelope waiting for its turn (a `unique` one for its claim). */
interface Inbound {
  readonly envelope: Envelope;
  state: 'ready' | 'claiming' | 'drop';
}

function isStringRecord(value: unknown): value is Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  return Object.values(value).every(item => typeof item === 'string');
}

function isWireEnvelope(value: unknown): value is WireEnvelope {
  if (value === null || typeof value !== 'object') return false;
  const wire = value as Partial<WireEnvelope>;
  return (
    wire.herald === 1 &&
    typeof wire.id === 'string' &&
    typeof wire.source === 'string' &&
    wire.source !== '' &&
    wire.source !== '*' &&
    typeof wire.event === 'string' &&
    wire.event !== '' &&
    wire.event !== '*'
  );
}

function quoteTable(name: string): string {
  return name
    .split('.')
    .map(part => `"${part}"`)
    .join('.');
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The EventsModule transport over PostgreSQL LISTEN/NOTIFY, on a
 * {@link PgHub}: every instance LISTENing to the channel receives every post
 * (the sender too), at most once, in each sender's order, and only once the
 * sender's notify committed. The envelope travels inside the pg-hub value,
 * so a Go or Node pg-hub service can read it; plain pg-hub events (from
 * triggers or other services) on the extra `topics` reach handlers too.
 *
 * `unique`: every instance receives the post; each claims its key in a table
 * (`INSERT ... ON CONFLICT`, on the database's clock) and only the winner
 * runs it; repeats within the TTL find the claim and are dropped.
 * @publicApi
 */
export class PgTransport implements Transport {
  readonly name = 'pg';
  readonly features: TransportFeatures = {
    reach: 'network',
    guarantee: 'at-most-once',
    ordering: 'per-sender',
    uniqueScope: 'network',
    maxPayloadBytes: PG_NOTIFY_MAX_PAYLOAD,
    redelivers: false,
    loopback: true,
    persistent: false,
  };
  /** The hub: shared with other parts (a microservice server) when given. */
  readonly hub: PgHub;
  /** The channel herald envelopes travel on. */
  readonly channel: string;
  /** Extra channels of plain pg-hub events. */
  readonly topics: readonly string[];
  private readonly ownsHub: boolean;
  private readonly uniqueTable: string;
  private readonly uniquePurgeMs: number;
  private readonly status = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
  readonly status$: Observable<TransportStatus> = this.status.asObservable();
  private context?: TransportContext;
  private consumer?: PgConsumer;
  private closed = false;
  private closing?: Promise<void>;
  private intake = false;
  private readonly inbox: Inbound[] = [];
  private tableReady?: Promise<void>;
  private lastPurge = 0;
  private readonly counters = {
    published: 0,
    publishFailed: 0,
    delivered: 0,
    foreign: 0,
    duplicates: 0,
    claimErrors: 0,
    acked: 0,
    nacked: 0,
  };
  private readonly settle = (settlement: Settlement): void => {
    if (settlement.outcome === 'ack') this.counters.acked++;
    else this.counters.nacked++;
  };
  private readonly onState = (state: PgHubState, reason?: string): void => {
    if (this.closed || !this.intake) return;
    switch (state) {
      case 'connected':
        this.status.next({ state: 'connected' });
        break;
      case 'reconnecting':
        this.status.next({ state: 'reconnecting', reason });
        break;
      case 'stopping':
      case 'stopped':
        this.status.next({ state: 'disconnected', reason: 'pg hub stopped' });
        break;
    }
  };

  constructor(options: PgTransportOptions = {}) {
    this.channel = validateTopic(options.channel ?? 'herald');
    this.topics = [...new Set((options.topics ?? []).map(validateTopic))].filter(
      topic => topic !== this.channel,
    );
    this.uniqueTable = options.uniqueTable ?? 'herald_unique_claims';
    if (!TABLE_NAME.test(this.uniqueTable)) {
      throw new InvalidOptionsError(
        `uniqueTable ${JSON.stringify(this.uniqueTable)} must be a lower-case [schema.]table name`,
      );
    }
    this.uniquePurgeMs = options.uniquePurgeMs ?? 60_000;
    if (options.hub) {
      this.hub = options.hub;
      this.ownsHub = false;
    } else {
      this.hub = new PgHub({ name: 'herald', ...options });
      this.ownsHub = true;
    }
  }

  async connect(context: TransportContext): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    this.context = context;
    this.intake = true;
    this.hub.on('state', this.onState);
    this.consumer = this.hub.consumer(this.onEvent);
    // Resolves once every channel's LISTEN has run, so nothing posted after connect is missed.
    await Promise.all([this.hub.start(), this.consumer.subscribe(this.channel, ...this.topics)]);
    if (!this.closed) this.status.next({ state: 'connected' });
  }

  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (this.closed || !this.context) {
      const error = new TransportClosedError(
        this.closed ? undefined : 'transport is not connected',
      );
      return batch.map(() => ({ ok: false, error }));
    }
    const pending: (Promise<boolean> | Error)[] = batch.map(envelope => {
      try {
        return this.hub.notifyPayload(this.channel, this.encode(envelope));
      } catch (error) {
        return error as Error;
      }
    });
    const results: PublishResult[] = new Array(batch.length);
    for (let i = 0; i < pending.length; i++) {
      const item = pending[i];
      if (item instanceof Error) {
        results[i] = { ok: false, error: item };
        continue;
      }
      try {
        results[i] = (await item)
          ? ACCEPTED
          : {
              ok: false,
              error: new TransportClosedError('pg hub stopped before the event was sent'),
            };
      } catch (error) {
        results[i] = { ok: false, error: error as Error };
      }
    }
    for (const result of results) {
      if (result.ok) this.counters.published++;
      else this.counters.publishFailed++;
    }
    return results;
  }

  /** The pg-hub payload of an envelope: its key, and the envelope as the value. */
  encode(envelope: Envelope): string {
    const wire: WireEnvelope = {
      herald: 1,
      id: envelope.id,
      source: envelope.source,
      event: envelope.event,
      origin: envelope.origin,
      at: envelope.occurredAt,
    };
    if (envelope.unique !== undefined) wire.unique = envelope.unique;
    if (envelope.headers !== undefined) wire.headers = envelope.headers;
    let json = JSON.stringify(wire);
    if (envelope.payload !== '') json = json.slice(0, -1) + ',"data":' + envelope.payload + '}';
    return encodePayload(envelope.key ?? [], json);
  }

  /** Turns a received pg-hub event into an envelope (herald's, or a plain pg-hub one). */
  decode(event: PgHubEvent): Envelope {
    const value = event.value;
    if (isWireEnvelope(value)) {
      return {
        id: value.id,
        source: value.source,
        event: value.event,
        payload: 'data' in value ? JSON.stringify(value.data) : '',
        key: event.key.length > 0 ? event.key : undefined,
        unique: typeof value.unique === 'string' && value.unique !== '' ? value.unique : undefined,
        origin: typeof value.origin === 'string' ? value.origin : `pg:${event.processId}`,
        occurredAt: typeof value.at === 'string' ? value.at : new Date().toISOString(),
        headers: isStringRecord(value.headers) ? value.headers : undefined,
      };
    }
    this.counters.foreign++;
    const op = (value as { op?: unknown } | null)?.op;
    return {
      id: randomUUID(),
      source: event.topic!,
      event: typeof op === 'string' && op !== '' && op !== '*' ? op : 'notify',
      payload: JSON.stringify(value),
      key: event.key.length > 0 ? event.key : undefined,
      origin: `pg:${event.processId}`,
      occurredAt: new Date(this.context?.clock.now() ?? Date.now()).toISOString(),
    };
  }

  private readonly onEvent = (event: PgHubEvent): void => {
    if (isAdvisory(event)) return;
    if (!this.intake) return;
    const envelope = this.decode(event);
    if (envelope.unique === undefined && this.inbox.length === 0) {
      this.deliver(envelope);
      return;
    }
    const inbound: Inbound = { envelope, state: 'ready' };
    this.inbox.push(inbound);
    if (envelope.unique !== undefined) {
      inbound.state = 'claiming';
      this.claim(envelope.unique).then(
        won => {
          if (!won) {
            this.counters.duplicates++;
            this.context?.logger.debug?.(`unique event is duplicate: ${envelope.unique}`);
          }
          inbound.state = won ? 'ready' : 'drop';
          this.flushInbox();
        },
        error => {
          // At most once: without a claim nobody can tell who runs it; drop it.
          this.counters.claimErrors++;
          this.context?.logger.error(
            `pg transport: cannot claim unique event ${envelope.source}/${envelope.event} (id ${envelope.id}): ${describe(error)}`,
          );
          inbound.state = 'drop';
          this.flushInbox();
        },
      );
    }
  };

  /** Delivers received envelopes in arrival order, each unique one once its claim settled. */
  private flushInbox(): void {
    while (this.inbox.length > 0 && this.inbox[0].state !== 'claiming') {
      const { envelope, state } = this.inbox.shift()!;
      if (state === 'ready' && this.intake) this.deliver(envelope);
    }
  }

  private deliver(envelope: Envelope): void {
    this.counters.delivered++;
    const delivery: Delivery = { envelope, attempt: 1, settle: this.settle };
    this.context?.deliver(delivery);
  }

  /**
   * Claims a unique key for the TTL, on the database's clock: true for the
   * one instance that inserted the row (or found it expired), false for
   * every other receiver and for repeats within the TTL.
   */
  private async claim(unique: string): Promise<boolean> {
    const pool = this.hub.pool;
    this.tableReady ??= this.createTable().catch(error => {
      this.tableReady = undefined;
      throw error;
    });
    await this.tableReady;
    const table = quoteTable(this.uniqueTable);
    const ttlMs = this.context?.unique.ttlMs ?? 2000;
    const result = await pool.query(
      `INSERT INTO ${table} AS c (key, expires_at) VALUES ($1, now() + $2::int * interval '1 millisecond') ` +
        'ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE c.expires_at <= now() RETURNING 1',
      [`${this.channel}:${unique}`, Math.round(ttlMs)],
    );
    this.purge();
    return result.rowCount === 1;
  }

  private async createTable(): Promise<void> {
    try {
      await this.hub.pool.query(
        `CREATE UNLOGGED TABLE IF NOT EXISTS ${quoteTable(this.uniqueTable)} ` +
          '(key text PRIMARY KEY, expires_at timestamptz NOT NULL)',
      );
    } catch (error) {
      // Two instances creating it at once: the loser sees a duplicate; the table is there.
      const code = (error as { code?: string }).code;
      if (code !== '23505' && code !== '42P07') throw error;
    }
  }

  /** Deletes expired claims now and then, so the table stays small. */
  private purge(): void {
    const now = Date.now();
    if (now - this.lastPurge < this.uniquePurgeMs) return;
    this.lastPurge = now;
    this.hub.pool
      .query(`DELETE FROM ${quoteTable(this.uniqueTable)} WHERE expires_at < now()`)
      .catch(error =>
        this.context?.logger.warn(
          `pg transport: purge of expired claims failed: ${describe(error)}`,
        ),
      );
  }

  async stopIntake(): Promise<void> {
    if (!this.intake) return;
    this.intake = false;
    this.consumer?.close();
  }

  stats(): Readonly<Record<string, number>> {
    return { ...this.counters, ...this.hub.stats() };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.stopIntake();
    this.closed = true;
    this.context = undefined;
    this.inbox.length = 0;
    this.hub.off('state', this.onState);
    if (this.ownsHub) await this.hub.stop({ wait: true });
    this.status.next({ state: 'closed' });
    this.status.complete();
  }
}
