import { randomUUID } from 'node:crypto';
import { describeError } from '../../common/describe-error.js';
import type { Clock } from '../../common/clock.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type { PgHubRawEvent } from './pg.advisory.js';
import { encodePayload, escapeJson } from './pg.codec.js';
import { PgPlainHeadParts, type PgPayload } from './pg.packed-payloads.js';

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
/** How a value without key starts, up to the text of its id. */
const HEAD_PLAIN_ID = 'e:{"herald":1,"id":"';
/**
 * Printable ASCII but `"`, `$` and `\`: a string of these is its own JSON
 * text between quotes, and already escaped (pure ASCII, no `$`).
 */
const PLAIN_STRING = /^[ !#%-[\]-~]*$/;

/**
 * The common envelope (a bus id, data, no key, unique or headers): encoded
 * as a head up to the data's text, then the data, then `}`.
 */
function isCommon(envelope: Envelope): boolean {
  const key = envelope.key;
  return (
    envelope.payload !== '' &&
    envelope.unique === undefined &&
    envelope.headers === undefined &&
    (key === undefined || key.length === 0) &&
    PLAIN_STRING.test(envelope.id)
  );
}

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

/** A JSON string's content with no escape and no control character in it. */
const PLAIN = '([^"\\\\\\u0000-\\u001f]*)';
/**
 * The meta members of a value as encode() writes them, up to the data:
 * id, source, event, origin, at, unique? (each a plain string), then
 * `,"data":` or the closing `}`.
 */
const ENCODED_META = new RegExp(
  `^\\{"herald":1,"id":"${PLAIN}","source":"${PLAIN.replace('*', '+')}","event":"${PLAIN.replace('*', '+')}",` +
    `"origin":"${PLAIN}","at":"${PLAIN}"(?:,"unique":"${PLAIN}")?(?:,"data":|\\}$)`,
);

/**
 * {@link ENCODED_META} for test() alone: sticky, so a match leaves the
 * meta's end in `lastIndex` and builds no match array and no captures.
 */
const ENCODED_META_TEST = new RegExp(ENCODED_META.source, 'y');
/** How a value in encode()'s form starts, up to its id's text. */
const ID_START = '{"herald":1,"id":"';
/** The middle's length but its three values: `","source":"`, `","event":"`, `","origin":"`, `","at":"`. */
const MIDDLE_FIXED = 12 + 11 + 12 + 8;

/** How many source/event pairs encode() keeps the meta JSON of (then it starts afresh). */
const MIDDLES_MAX = 1024;

/**
 * Herald envelopes in pg-hub payloads, both ways: encode() writes the meta
 * members first and the data's JSON text last, unparsed; decode() reads the
 * meta only and hands the data's text on (the bus parses it once), reads
 * envelopes of any member order, and turns a plain pg-hub event (a
 * trigger's, another service's) into an envelope of its own.
 *
 * Both directions are on every event's path, so they avoid per-event work
 * that repeats: encode() keeps the JSON of the members that repeat (source,
 * event, origin and, within a millisecond, the time) and escapes only what
 * is new; decode() reads the members in encode()'s order with one match of
 * a regular expression (no JSON.parse of the meta, no copy of it; for a run
 * of one sender's event, its test alone and the last value's middle), and
 * hands out the string it read last for a value that repeats (one sender's
 * origin, an event's source and name, the time of a burst). Anything else
 * (another member order, escapes in a meta string, headers) takes the
 * general path, as before.
 */
export class PgEnvelopeCodec {
  readonly counters: PgEnvelopeCounters = { foreign: 0, decodeErrors: 0 };
  private warnings?: { logger: HeraldLogger; limiter: WarningLimiter };
  /** encode(): `,"source":..,"event":..,"origin":..,"at":` per source, event (escaped), for `origin`. */
  private middles = new Map<string, Map<string, string>>();
  private middlesSize = 0;
  private origin = '';
  private lastAt = '';
  private lastAtJson = '""';
  /** encode(): {@link rest} of the last source, event, origin and time. */
  private restOf = '';
  private restSource = '';
  private restEvent = '';
  private restOrigin = '';
  private restAt = '';
  /** decode(): the last value read of each repeating member (one string kept, not one per event). */
  private seenSource = '';
  private seenEvent = '';
  private seenOrigin = '';
  private seenAt = '';
  /**
   * decode(): the text of the last value scan() read, from its id's closing
   * quote to its time's opening one (`","source":"S","event":"E","origin":"O","at":"`),
   * whose members are {@link seenSource}, {@link seenEvent} and
   * {@link seenOrigin}. A value of the same sender and event repeats it.
   */
  private seenMiddle = '';
  /** The last two values scan() read had the same middle: the next is read by test() first. */
  private repeating = false;

  constructor(
    private readonly logger: () => HeraldLogger | undefined,
    private readonly clock: () => Clock | undefined,
  ) {}

  /** The pg-hub payload of an envelope: its key, and the envelope as the value. */
  encode(envelope: Envelope): string {
    const id = envelope.id;
    const payload = envelope.payload;
    const key = envelope.key;
    // The common case (a bus id, data, no key, unique or headers) in four
    // concatenations: the id's JSON is itself in quotes, and the members
    // after it up to the data's text are kept whole (see {@link rest}).
    if (isCommon(envelope))
      return HEAD_PLAIN_ID + id + this.rest(envelope) + escapeJson(payload) + '}';
    // Member by member, in the order decode() expects (data last). Escaping
    // is per character, so escaping each part is escaping the whole text.
    let json = '{"herald":1,"id":' + escapeJson(JSON.stringify(id)) + this.middle(envelope);
    json += this.atJson(envelope.occurredAt);
    if (envelope.unique !== undefined)
      json += ',"unique":' + escapeJson(JSON.stringify(envelope.unique));
    if (envelope.headers !== undefined)
      json += ',"headers":' + escapeJson(JSON.stringify(envelope.headers));
    if (payload !== '') json += ',"data":' + escapeJson(payload);
    json += '}';
    return key === undefined || key.length === 0
      ? 'e:' + json
      : encodePayload(key, undefined) + ':' + json;
  }

  /**
   * encode()'s payload, in {@link PgPayloadParts} on the common path (the
   * data's text, escaped, apart from the members before it): the notifier
   * writes them part by part, so the data's text is never copied into a
   * joined string. The same text as encode(), byte for byte.
   */
  encodeParts(envelope: Envelope): PgPayload {
    // The head is printable ASCII (a PLAIN_STRING id, members JSON.stringify
    // and escapeJson wrote): the notifier writes it without a scan.
    if (isCommon(envelope))
      return new PgPlainHeadParts(
        HEAD_PLAIN_ID + envelope.id + this.rest(envelope),
        escapeJson(envelope.payload),
      );
    return this.encode(envelope);
  }

  /** The time's JSON (escaped), kept for the millisecond the bus shares it. */
  private atJson(at: string): string {
    if (at !== this.lastAt) {
      this.lastAtJson = escapeJson(JSON.stringify(at));
      this.lastAt = at;
    }
    return this.lastAtJson;
  }

  /**
   * `","source":S,"event":E,"origin":O,"at":T,"data":` (escaped): what
   * follows a plain id up to the data's text, kept for the last source,
   * event, origin and time, which a burst of one event shares.
   */
  private rest(envelope: Envelope): string {
    const at = envelope.occurredAt;
    if (
      envelope.source !== this.restSource ||
      envelope.event !== this.restEvent ||
      envelope.origin !== this.restOrigin ||
      at !== this.restAt
    ) {
      this.restOf = '"' + this.middle(envelope) + this.atJson(at) + ',"data":';
      this.restSource = envelope.source;
      this.restEvent = envelope.event;
      this.restOrigin = envelope.origin;
      this.restAt = at;
    }
    return this.restOf;
  }

  /** `,"source":S,"event":E,"origin":O,"at":` (escaped), kept per source and event. */
  private middle(envelope: Envelope): string {
    if (envelope.origin !== this.origin) {
      this.origin = envelope.origin;
      this.middles.clear();
      this.middlesSize = 0;
    }
    let events = this.middles.get(envelope.source);
    let middle = events?.get(envelope.event);
    if (middle !== undefined) return middle;
    middle = escapeJson(
      ',"source":' +
        JSON.stringify(envelope.source) +
        ',"event":' +
        JSON.stringify(envelope.event) +
        ',"origin":' +
        JSON.stringify(envelope.origin) +
        ',"at":',
    );
    // Bounded: names that vary without end must not grow it for ever.
    if (this.middlesSize >= MIDDLES_MAX) {
      this.middles.clear();
      this.middlesSize = 0;
      events = undefined;
    }
    if (!events) this.middles.set(envelope.source, (events = new Map()));
    events.set(envelope.event, middle);
    this.middlesSize++;
    return middle;
  }

  /**
   * Turns a received notification into an envelope: herald's (the data's
   * JSON text handed on unparsed), or a plain pg-hub event's. Undefined,
   * counted and logged, for a value that is not JSON.
   */
  decode(event: PgHubRawEvent): Envelope | undefined {
    const json = event.json;
    if (json !== undefined) {
      const scanned = this.scan(event, json);
      if (scanned !== undefined) return scanned;
    }
    if (json !== undefined && json.startsWith(WIRE_PREFIX) && json.endsWith('}')) {
      // Not in encode()'s form: the meta members first and `data` last, as
      // encode() writes them; only the meta is parsed here, the data once by the bus.
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

  /**
   * The envelope of a value in exactly encode()'s form ({@link ENCODED_META}:
   * `{"herald":1,` id, source, event, origin, at, unique?, then `}` or
   * `,"data":` and the data to the last `}`), or undefined for any other
   * form (the general path decides). One match of the meta: no JSON.parse,
   * no copy of it. Its strings hold no escape and no control character, so
   * what is read is what JSON.parse would read. From the second value in a
   * row of one sender and event on, the match is the expression's test
   * alone (no match array, no captures: about 150 B less garbage per event)
   * and the members are read against the last value's middle; anything else
   * falls back to the captures.
   */
  private scan(event: PgHubRawEvent, json: string): Envelope | undefined {
    const middle = this.seenMiddle;
    if (this.repeating) {
      // The expression's test alone (no match array, no captures): the meta
      // is in encode()'s form, its strings plain, and it ends at lastIndex.
      ENCODED_META_TEST.lastIndex = 0;
      if (!ENCODED_META_TEST.test(json)) return undefined;
      const end = ENCODED_META_TEST.lastIndex;
      // Plain strings hold no `"`: the first one closes the id.
      const idEnd = json.indexOf('"', ID_START.length);
      if (json.indexOf(middle, idEnd) === idEnd) {
        const atStart = idEnd + middle.length;
        const atEnd = json.indexOf('"', atStart);
        // No `unique` after the time: `,"data":` or the closing `}` ends the meta.
        if (end === atEnd + 9 || end === atEnd + 2) {
          let payload = '';
          if (end !== json.length) {
            if (json.charCodeAt(json.length - 1) !== 0x7d) return undefined;
            payload = json.slice(end, -1);
          }
          const at = json.slice(atStart, atEnd);
          return {
            id: json.slice(ID_START.length, idEnd),
            source: this.seenSource,
            event: this.seenEvent,
            payload,
            key: event.key.length > 0 ? event.key : undefined,
            unique: undefined,
            origin: this.seenOrigin,
            occurredAt: at === this.seenAt ? this.seenAt : (this.seenAt = at),
            headers: undefined,
          };
        }
      }
      // Another sender or event: read by the captures from now on, until
      // two values in a row share a middle again (senders taking turns
      // would otherwise cost two runs of the expression each).
      this.repeating = false;
    }
    const meta = ENCODED_META.exec(json);
    if (meta === null) return undefined;
    const source = meta[2];
    const name = meta[3];
    if (source === '*' || name === '*') return undefined;
    const end = meta[0].length;
    let payload = '';
    if (end !== json.length) {
      if (json.charCodeAt(json.length - 1) !== 0x7d) return undefined;
      payload = json.slice(end, -1);
    }
    const origin = meta[4];
    const sameSource = source === this.seenSource;
    const sameEvent = name === this.seenEvent;
    const sameOrigin = origin === this.seenOrigin;
    if (sameSource && sameEvent && sameOrigin) {
      // The second value in a row with this middle: the next ones are read
      // by test() first. From the id's closing quote to the time's opening one.
      if (!this.repeating) {
        const idEnd = ID_START.length + meta[1].length;
        this.seenMiddle = json.slice(
          idEnd,
          idEnd + MIDDLE_FIXED + source.length + name.length + origin.length,
        );
        this.repeating = true;
      }
    } else {
      this.repeating = false;
      if (!sameSource) this.seenSource = source;
      if (!sameEvent) this.seenEvent = name;
      if (!sameOrigin) this.seenOrigin = origin;
    }
    const unique = meta[6];
    return {
      id: meta[1],
      source: this.seenSource,
      event: this.seenEvent,
      payload,
      key: event.key.length > 0 ? event.key : undefined,
      unique: unique === undefined || unique === '' ? undefined : unique,
      origin: this.seenOrigin,
      occurredAt: meta[5] === this.seenAt ? this.seenAt : (this.seenAt = meta[5]),
      headers: undefined,
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
