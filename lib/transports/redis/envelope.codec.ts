import type { Envelope } from '../../bus/envelope.interface.js';
import { StreamEntryError } from './redis.errors.js';

/**
 * The transport's entry layout: one field per envelope member, all strings,
 * so `XRANGE` / `redis-cli` show readable events. `key` is comma-joined
 * decimal int64s, `headers` a JSON object; both absent when unset.
 */
export const ENVELOPE_ENTRY_FIELDS = {
  id: 'id',
  source: 'source',
  event: 'event',
  payload: 'payload',
  origin: 'origin',
  occurredAt: 'occurred_at',
  key: 'key',
  unique: 'unique',
  headers: 'headers',
} as const;

const F = ENVELOPE_ENTRY_FIELDS;
const INT = /^-?\d{1,19}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** An envelope as a flat XADD field list. */
export function encodeEnvelopeEntry(envelope: Envelope): string[] {
  const out = [
    F.id,
    envelope.id,
    F.source,
    envelope.source,
    F.event,
    envelope.event,
    F.payload,
    envelope.payload,
    F.origin,
    envelope.origin,
    F.occurredAt,
    envelope.occurredAt,
  ];
  if (envelope.key !== undefined) out.push(F.key, envelope.key.join(','));
  if (envelope.unique !== undefined) out.push(F.unique, envelope.unique);
  if (envelope.headers !== undefined) out.push(F.headers, JSON.stringify(envelope.headers));
  return out;
}

function required(fields: Readonly<Record<string, string>>, name: string, nonEmpty = true): string {
  const value = fields[name];
  if (typeof value !== 'string') throw new StreamEntryError(name, 'missing');
  if (nonEmpty && value === '') throw new StreamEntryError(name, 'empty');
  return value;
}

function decodeKey(text: string): bigint[] {
  if (text === '') return [];
  return text.split(',').map(part => {
    if (!INT.test(part)) throw new StreamEntryError(F.key, `'${part}' is not an int64`);
    const value = BigInt(part);
    if (value < INT64_MIN || value > INT64_MAX)
      throw new StreamEntryError(F.key, `'${part}' is out of int64 range`);
    return value;
  });
}

function decodeHeaders(text: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new StreamEntryError(F.headers, 'not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new StreamEntryError(F.headers, 'not an object');
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') throw new StreamEntryError(F.headers, `${name} is not a string`);
    headers[name] = value;
  }
  return headers;
}

/**
 * Reads an entry from its flat `[field, value, ...]` list as XREAD returns
 * it, without building a record first (the transport's hot path).
 * @throws StreamEntryError naming the first bad field
 */
export function decodeEnvelopeFlat(flat: readonly string[]): Envelope {
  let id: string | undefined;
  let source: string | undefined;
  let event: string | undefined;
  let payload: string | undefined;
  let origin: string | undefined;
  let occurredAt: string | undefined;
  let key: string | undefined;
  let unique: string | undefined;
  let headers: string | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const value = flat[i + 1];
    switch (flat[i]) {
      case F.id:
        id = value;
        break;
      case F.source:
        source = value;
        break;
      case F.event:
        event = value;
        break;
      case F.payload:
        payload = value;
        break;
      case F.origin:
        origin = value;
        break;
      case F.occurredAt:
        occurredAt = value;
        break;
      case F.key:
        key = value;
        break;
      case F.unique:
        unique = value;
        break;
      case F.headers:
        headers = value;
        break;
    }
  }
  if (
    !id ||
    !source ||
    !event ||
    payload === undefined ||
    origin === undefined ||
    occurredAt === undefined
  ) {
    // The slow path names the culprit.
    return decodeEnvelopeEntry({
      id,
      source,
      event,
      payload,
      origin,
      occurred_at: occurredAt,
    } as Record<string, string>);
  }
  if (source === '*' || event === '*')
    throw new StreamEntryError(source === '*' ? F.source : F.event, "'*' is a pattern");
  return {
    id,
    source,
    event,
    payload,
    origin,
    occurredAt,
    key: key === undefined ? undefined : decodeKey(key),
    unique: unique === undefined || unique === '' ? undefined : unique,
    headers: headers === undefined ? undefined : decodeHeaders(headers),
  };
}

/**
 * Reads an entry written by {@link encodeEnvelopeEntry}.
 * @throws StreamEntryError naming the first bad field
 */
export function decodeEnvelopeEntry(fields: Readonly<Record<string, string>>): Envelope {
  const source = required(fields, F.source);
  const event = required(fields, F.event);
  if (source === '*' || event === '*')
    throw new StreamEntryError(source === '*' ? F.source : F.event, "'*' is a pattern");
  const key = fields[F.key];
  const unique = fields[F.unique];
  const headers = fields[F.headers];
  return {
    id: required(fields, F.id),
    source,
    event,
    payload: required(fields, F.payload, false),
    origin: required(fields, F.origin, false),
    occurredAt: required(fields, F.occurredAt, false),
    key: key === undefined ? undefined : decodeKey(key),
    unique: unique === undefined || unique === '' ? undefined : unique,
    headers: headers === undefined ? undefined : decodeHeaders(headers),
  };
}
