import { SerializationError } from '../../common/errors.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import { StreamEntryError } from './redis.errors.js';
import { EVENT_FIELDS, fieldsToRecord, formatRfc3339Nano } from './stream-event.js';

/**
 * The redis transport's `layout: 'mainflux'`: entries as a Mainflux /
 * Magistrala Go service writes and reads them (`pkg/events`, MainfluxLabs
 * v0.41: `XADD <stream> MAXLEN ~ n * operation thing.create id ... occurred_at
 * 2024-01-02T03:04:05.123456789Z`; mainflux/mainflux's older publisher wrote
 * `occurred_at` as `time.Now().UnixNano()`, a decimal string on the wire).
 *
 * - read: stream → `source`, `operation` → `event`, every other field →
 *   the data, an object of strings; `occurred_at` is kept in the data byte
 *   for byte (whatever its format), and also sets the envelope's
 *   `occurredAt` when it is an RFC 3339 time or decimal Unix nanoseconds.
 * - write: `operation` = the event name, then one field per data member.
 *   Strings go as they are; every other value (number, boolean, null,
 *   object, array) is JSON-encoded, as the Go services encode `metadata`;
 *   `undefined` members are left out. Data must be a plain object (or no
 *   data). `occurred_at` is added (RFC 3339 nanoseconds, UTC, what v0.41's
 *   decoder parses) unless the data carries one, which is written as given.
 *
 * The payload the bus hands the transport must be JSON (the default codec):
 * the transport reads the data members from it. Keys, `unique` and headers
 * have no place in the Go layout and are refused.
 */
export const MAINFLUX_OPERATION = EVENT_FIELDS.operation;
const OCCURRED_AT = EVENT_FIELDS.occurredAt;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const DECIMAL = /^\d{1,20}$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * An envelope as a Mainflux stream entry (flat `[field, value, ...]`).
 * @throws SerializationError for data that is not a plain object, a data
 *   member named `operation`, or a key, `unique` or headers on the post
 */
export function encodeMainfluxEntry(envelope: Envelope): string[] {
  const where = `${envelope.source}/${envelope.event}`;
  if (envelope.key !== undefined)
    throw new SerializationError(where, "layout 'mainflux' has no place for a key");
  if (envelope.unique !== undefined)
    throw new SerializationError(where, "layout 'mainflux' has no place for unique");
  if (envelope.headers !== undefined && Object.keys(envelope.headers).length > 0)
    throw new SerializationError(where, "layout 'mainflux' has no place for headers");
  let data: unknown;
  if (envelope.payload !== '') {
    try {
      data = JSON.parse(envelope.payload);
    } catch {
      throw new SerializationError(
        where,
        "layout 'mainflux' needs JSON payloads (the default codec)",
      );
    }
  }
  const out: string[] = [MAINFLUX_OPERATION, envelope.event];
  if (data === undefined || data === null) {
    out.push(OCCURRED_AT, occurredAtOf(envelope));
    return out;
  }
  if (!isPlainObject(data))
    throw new SerializationError(
      where,
      `layout 'mainflux' carries an object of fields; got ${Array.isArray(data) ? 'an array' : typeof data}`,
    );
  let hasTime = false;
  for (const [name, value] of Object.entries(data)) {
    if (value === undefined) continue;
    if (name === MAINFLUX_OPERATION)
      throw new SerializationError(
        `${where}.${name}`,
        "'operation' is the event name in layout 'mainflux'",
      );
    if (name === OCCURRED_AT) hasTime = true;
    out.push(name, typeof value === 'string' ? value : JSON.stringify(value));
  }
  if (!hasTime) out.push(OCCURRED_AT, occurredAtOf(envelope));
  return out;
}

function occurredAtOf(envelope: Envelope): string {
  const date = new Date(envelope.occurredAt);
  return formatRfc3339Nano(Number.isNaN(date.getTime()) ? new Date() : date);
}

/** The envelope time of an `occurred_at` value, or undefined when it is neither format. */
export function mainfluxTime(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (RFC3339.test(value)) {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : value;
  }
  if (DECIMAL.test(value)) {
    const ms = Number(BigInt(value) / 1_000_000n);
    const date = new Date(ms);
    return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
  }
  return undefined;
}

/** The ms part of a stream entry id as an ISO time. */
function idTime(id: string): string {
  const ms = Number(id.slice(0, id.indexOf('-')));
  return new Date(Number.isFinite(ms) ? ms : 0).toISOString();
}

/**
 * A Mainflux stream entry as an envelope: `source` the stream, `event` the
 * `operation`, the data the other fields (as JSON text for the bus's codec).
 * @throws StreamEntryError when `operation` is missing or empty
 */
export function decodeMainfluxEntry(stream: string, id: string, flat: readonly string[]): Envelope {
  const fields = fieldsToRecord(flat);
  const operation = fields[MAINFLUX_OPERATION];
  if (typeof operation !== 'string' || operation === '')
    throw new StreamEntryError(MAINFLUX_OPERATION, 'missing');
  if (operation === '*') throw new StreamEntryError(MAINFLUX_OPERATION, "'*' is a pattern");
  const data: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (name === MAINFLUX_OPERATION) continue;
    Object.defineProperty(data, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return {
    id: `${stream}@${id}`,
    source: stream,
    event: operation,
    payload: JSON.stringify(data),
    origin: '',
    occurredAt: mainfluxTime(fields[OCCURRED_AT]) ?? idTime(id),
  };
}
