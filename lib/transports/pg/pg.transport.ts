import { randomUUID } from 'node:crypto';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import { InvalidOptionsError, QueueFullError, TransportClosedError } from '../../common/errors.js';
import { describeError } from '../../common/describe-error.js';
import type { HeraldLogger } from '../../common/logger.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type {
  Delivery,
  PublishResult,
  Settlement,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportStatus,
} from '../../interfaces/transport.interface.js';
import type { PgHubAdvisoryEvent, PgHubRawEvent } from './pg.advisory.js';
import { encodePayload, validateTopic } from './pg.codec.js';
import { PG_NOTIFY_MAX_PAYLOAD } from './pg.constants.js';
import type { PgConsumer } from './pg.consumer.js';
import { PgHub, type PgHubState } from './pg.hub.js';
import type { PgTransportOptions } from './pg-transport.options.js';
import { PG_TABLE_NAME, PgUniqueClaims } from './pg.unique-claims.js';

const ACCEPTED: PublishResult = Object.freeze({ ok: true });

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

/** How encode() starts every herald value. */
const WIRE_PREFIX = '{"herald":1,';

/**
 * The index of the `,` before a top-level `"data":` member of a JSON object
 * text, or -1: a scan that skips strings and nested values, so it costs the
 * length of the meta members only. `from` and `depth` start it inside the
 * object.
 */
export function topLevelData(json: string, from = 0, depth = 0): number {
  for (let i = from; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < json.length; i++) {
        const d = json.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c && depth === 1 && json.startsWith('"data":', i + 1)) return i;
  }
  return -1;
}

/**
 * Where the top-level `data` member starts in a value encode() wrote. Meta
 * members are strings, in which a bare `"` cannot occur, so the first
 * `,"data":` is the top-level one unless `headers` (an object, whose keys are
 * anyone's) comes before it: only then is the text scanned, from there.
 */
function dataMember(json: string): number {
  const data = json.indexOf(',"data":');
  if (data < 0) return -1;
  const headers = json.indexOf(',"headers":');
  if (headers < 0 || headers > data) return data;
  return topLevelData(json, headers + 1, 1);
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
  private readonly claims: PgUniqueClaims;
  private readonly maxPendingClaims: number;
  /** Unique events whose claim has not settled yet. */
  private claiming = 0;
  private warnings?: WarningLimiter;
  private readonly status = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
  readonly status$: Observable<TransportStatus> = this.status.asObservable();
  private context?: TransportContext;
  private consumer?: PgConsumer;
  private closed = false;
  private closing?: Promise<void>;
  private intake = false;
  private ready = false;
  private origin = '';
  private originJson = '""';
  private readonly counters = {
    published: 0,
    publishFailed: 0,
    delivered: 0,
    foreign: 0,
    decodeErrors: 0,
    duplicates: 0,
    claimErrors: 0,
    claimsDropped: 0,
    acked: 0,
    nacked: 0,
  };
  private readonly settle = (settlement: Settlement): void => {
    if (settlement.outcome === 'ack') this.counters.acked++;
    else this.counters.nacked++;
  };
  private readonly onState = (state: PgHubState, reason?: string): void => {
    // Before connect() resolved, 'connected' waits for our LISTENs to have run.
    if (this.closed || !this.ready) return;
    switch (state) {
      case 'connected':
        this.setStatus('connected');
        break;
      case 'reconnecting':
        this.setStatus('reconnecting', reason);
        break;
      case 'stopping':
      case 'stopped':
        this.setStatus('disconnected', 'pg hub stopped');
        break;
    }
  };

  /** Forwards to the bus's logger once connected (the hub is made before). */
  private readonly hubLogger: HeraldLogger = {
    log: message => this.context?.logger.log(message),
    warn: message => this.context?.logger.warn(message),
    error: (message, stack) => this.context?.logger.error(message, stack),
    debug: message => this.context?.logger.debug?.(message),
  };

  private setStatus(state: TransportStatus['state'], reason?: string): void {
    if (this.status.value.state === state) return;
    this.status.next(reason === undefined ? { state } : { state, reason });
  }

  constructor(options: PgTransportOptions = {}) {
    this.channel = validateTopic(options.channel ?? 'herald');
    this.topics = [...new Set((options.topics ?? []).map(validateTopic))].filter(
      topic => topic !== this.channel,
    );
    const uniqueTable = options.uniqueTable ?? 'herald_unique';
    if (!PG_TABLE_NAME.test(uniqueTable)) {
      throw new InvalidOptionsError(
        `uniqueTable ${JSON.stringify(uniqueTable)} must be a lower-case [schema.]table name`,
      );
    }
    this.maxPendingClaims = options.maxPendingClaims ?? 10_000;
    if (options.hub) {
      this.hub = options.hub;
      this.ownsHub = false;
    } else {
      // Under EventsModule no logger is given: the hub logs through the
      // bus's (known at connect), so a lost LISTEN connection is never silent.
      this.hub = new PgHub({
        name: 'herald',
        ...options,
        logger: options.logger ?? this.hubLogger,
      });
      this.ownsHub = true;
    }
    this.claims = new PgUniqueClaims({
      pool: this.hub.pool,
      table: uniqueTable,
      purgeMs: options.uniquePurgeMs ?? 60_000,
      timeoutMs: options.claimTimeoutMs ?? 5000,
      logger: () => this.context?.logger,
    });
  }

  async connect(context: TransportContext): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    this.context = context;
    this.warnings = new WarningLimiter(context.logger, 10_000, context.clock);
    this.intake = true;
    this.hub.on('state', this.onState);
    this.consumer = this.hub.rawConsumer(this.onEvent);
    // Resolves once every channel's LISTEN has run, so nothing posted after connect is missed.
    await Promise.all([this.hub.start(), this.consumer.subscribe(this.channel, ...this.topics)]);
    this.ready = true;
    if (!this.closed) this.setStatus(this.hub.state === 'connected' ? 'connected' : 'reconnecting');
  }

  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (this.closed || !this.context) {
      const error = new TransportClosedError(
        this.closed ? undefined : 'transport is not connected',
      );
      return batch.map(() => ({ ok: false, error }));
    }
    const payloads = new Array<string>(batch.length);
    for (let i = 0; i < batch.length; i++) payloads[i] = this.encode(batch[i]);
    // Every envelope has its own id: PostgreSQL can never fold two of them.
    const outcomes = await this.hub.notifyPayloads(this.channel, payloads, { distinct: true });
    const results: PublishResult[] = outcomes.map(outcome =>
      outcome === true
        ? ACCEPTED
        : {
            ok: false,
            error:
              outcome === false
                ? new TransportClosedError('pg hub stopped before the event was sent')
                : outcome,
          },
    );
    for (const result of results) {
      if (result.ok) this.counters.published++;
      else this.counters.publishFailed++;
    }
    return results;
  }

  /** The pg-hub payload of an envelope: its key, and the envelope as the value. */
  encode(envelope: Envelope): string {
    // Member by member, in the order decode() expects (data last); the
    // origin is the same for every post of a process, so its JSON is kept.
    if (envelope.origin !== this.origin) {
      this.origin = envelope.origin;
      this.originJson = JSON.stringify(envelope.origin);
    }
    let json =
      '{"herald":1,"id":' +
      JSON.stringify(envelope.id) +
      ',"source":' +
      JSON.stringify(envelope.source) +
      ',"event":' +
      JSON.stringify(envelope.event) +
      ',"origin":' +
      this.originJson +
      ',"at":' +
      JSON.stringify(envelope.occurredAt);
    if (envelope.unique !== undefined) json += ',"unique":' + JSON.stringify(envelope.unique);
    if (envelope.headers !== undefined) json += ',"headers":' + JSON.stringify(envelope.headers);
    json += envelope.payload === '' ? '}' : ',"data":' + envelope.payload + '}';
    return encodePayload(envelope.key ?? [], json);
  }

  /**
   * Turns a received notification into an envelope: herald's (the data's
   * JSON text handed on unparsed), or a plain pg-hub event's. Undefined,
   * counted and logged, for a value that is not JSON.
   */
  decode(event: PgHubRawEvent): Envelope | undefined {
    const json = event.json;
    if (json !== undefined && json.startsWith(WIRE_PREFIX) && json.endsWith('}')) {
      // Fast path: the meta members come first and `data` last, as encode()
      // writes them; only the meta is parsed here, the data once by the bus.
      const split = dataMember(json);
      if (split > 0) {
        // Not valid on its own (another member order, a misplaced split): the
        // full parse below decides, and counts it if it is really bad.
        let meta: unknown;
        try {
          meta = JSON.parse(json.slice(0, split) + '}');
        } catch {
          meta = undefined;
        }
        if (isWireEnvelope(meta)) return this.fromWire(event, meta, json.slice(split + 8, -1));
      }
    }
    const value = json === undefined ? null : this.parse(event, json);
    if (value === undefined) return undefined;
    if (isWireEnvelope(value)) {
      return this.fromWire(event, value, 'data' in value ? JSON.stringify(value.data) : '');
    }
    this.counters.foreign++;
    const op = (value as { op?: unknown } | null)?.op;
    return {
      id: randomUUID(),
      source: event.topic,
      event: typeof op === 'string' && op !== '' && op !== '*' ? op : 'notify',
      payload: json ?? 'null',
      key: event.key.length > 0 ? event.key : undefined,
      origin: `pg:${event.processId}`,
      occurredAt: new Date(this.context?.clock.now() ?? Date.now()).toISOString(),
    };
  }

  private fromWire(event: PgHubRawEvent, wire: WireEnvelope, payload: string): Envelope {
    return {
      id: wire.id,
      source: wire.source,
      event: wire.event,
      payload,
      key: event.key.length > 0 ? event.key : undefined,
      unique: typeof wire.unique === 'string' && wire.unique !== '' ? wire.unique : undefined,
      origin: typeof wire.origin === 'string' ? wire.origin : `pg:${event.processId}`,
      occurredAt: typeof wire.at === 'string' ? wire.at : new Date().toISOString(),
      headers: isStringRecord(wire.headers) ? wire.headers : undefined,
    };
  }

  private parse(event: PgHubRawEvent, json: string): unknown {
    try {
      return JSON.parse(json) as unknown;
    } catch (error) {
      this.counters.decodeErrors++;
      this.context?.logger.warn(
        `pg transport: dropped a notification on ${event.topic} from pid ${event.processId}: bad JSON (${describeError(error)})`,
      );
      return undefined;
    }
  }

  /**
   * Delivers a received envelope at once, or, for a `unique` one, once its
   * claim is won. Claims never hold back other events: a plain event goes
   * straight through even while claims wait (so a unique event may be run
   * after a later plain event of its sender). Waiting claims are bounded by
   * `maxPendingClaims`: past it a unique event is dropped, counted
   * (`claimsDropped`) and logged, as LISTEN cannot be slowed down.
   */
  private readonly onEvent = (event: PgHubRawEvent | PgHubAdvisoryEvent): void => {
    if (event.topic === null || !this.intake) return;
    const envelope = this.decode(event);
    if (envelope === undefined) return;
    const unique = envelope.unique;
    if (unique === undefined) {
      this.deliver(envelope);
      return;
    }
    if (this.claiming >= this.maxPendingClaims) {
      this.counters.claimsDropped++;
      const error = new QueueFullError('pg unique claims', this.maxPendingClaims);
      this.warnings?.warn(
        'claims-full',
        `pg transport: dropped unique event ${envelope.source}/${envelope.event} (id ${envelope.id}, key ${unique}): ${error.message}`,
      );
      return;
    }
    this.claiming++;
    const ttlMs = this.context?.unique.ttlMs ?? 2000;
    this.claims.claim(`${this.channel}:${unique}`, envelope.id, ttlMs).then(
      won => {
        this.claiming--;
        if (!won) {
          this.counters.duplicates++;
          this.context?.logger.debug?.(`unique event is duplicate: ${unique}`);
        } else if (this.intake) this.deliver(envelope);
      },
      error => {
        this.claiming--;
        // At most once: without a claim nobody can tell who runs it; drop it.
        this.counters.claimErrors++;
        this.warnings?.error(
          'claim-failed',
          `pg transport: cannot claim unique event ${envelope.source}/${envelope.event} (id ${envelope.id}), dropped: ${describeError(error)}`,
        );
      },
    );
  };

  private deliver(envelope: Envelope): void {
    this.counters.delivered++;
    const delivery: Delivery = { envelope, attempt: 1, settle: this.settle };
    this.context?.deliver(delivery);
  }

  async stopIntake(): Promise<void> {
    if (!this.intake) return;
    this.intake = false;
    this.consumer?.close();
  }

  stats(): Readonly<Record<string, number>> {
    return { ...this.counters, pendingClaims: this.claiming, ...this.hub.stats() };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.stopIntake();
    this.closed = true;
    this.warnings?.flush();
    this.context = undefined;
    this.hub.off('state', this.onState);
    if (this.ownsHub) await this.hub.stop({ wait: true });
    this.setStatus('closed');
    this.status.complete();
  }
}
