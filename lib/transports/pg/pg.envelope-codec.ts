import { randomUUID } from 'node:crypto';
import { describeError } from '../../common/describe-error.js';
import type { Clock } from '../../common/clock.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type { PgHubRawEvent } from './pg.advisory.js';
import { encodePayload } from './pg.codec.js';

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
 * @publicApi
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

/** The codec's counters (part of the transport's stats). */
export interface PgEnvelopeCounters {
  /** Plain pg-hub events (not herald envelopes) turned into envelopes. */
  foreign: number;
  /** Values that were not JSON (counted, logged, dropped). */
  decodeErrors: number;
}

/**
 * Herald envelopes in pg-hub payloads, both ways: encode() writes the meta
 * members first and the data's JSON text last, unparsed; decode() parses
 * the meta only and hands the data's text on (the bus parses it once),
 * reads envelopes of any member order, and turns a plain pg-hub event (a
 * trigger's, another service's) into an envelope of its own.
 */
export class PgEnvelopeCodec {
  readonly counters: PgEnvelopeCounters = { foreign: 0, decodeErrors: 0 };
  private origin = '';
  private originJson = '""';
  private warnings?: { logger: HeraldLogger; limiter: WarningLimiter };

  constructor(
    private readonly logger: () => HeraldLogger | undefined,
    private readonly clock: () => Clock | undefined,
  ) {}

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
      occurredAt: new Date(this.clock()?.now() ?? Date.now()).toISOString(),
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
      const logger = this.logger();
      if (!logger) return undefined;
      if (this.warnings?.logger !== logger)
        this.warnings = { logger, limiter: new WarningLimiter(logger, 10_000, this.clock()) };
      this.warnings.limiter.warn(
        `bad-json:${event.topic}`,
        logLine(
          'pg',
          'notification-bad-json',
          `dropped a notification whose value is not JSON: ${describeError(error)}`,
          { channel: event.topic, pid: event.processId },
        ),
      );
      return undefined;
    }
  }
}
