import type { Envelope } from '../../interfaces/envelope.interface.js';
import { StreamEntryError } from './redis.errors.js';

/**
 * The transport's entry layout: two fields, so a reader parses two strings
 * per entry instead of one per envelope member (the Node client's reply
 * parsing is the cost that matters at volume):
 *
 * - `herald`: a JSON array `[id, source, event, origin, occurredAt, key?,
 *   unique?, headers?]`; `key` is comma-joined decimal int64s, `headers` an
 *   object of strings; trailing absent members are left out, inner ones are
 *   `null`;
 * - `payload`: the codec's text, as is.
 */
export const ENVELOPE_ENTRY_FIELDS = {
  header: 'herald',
  payload: 'payload',
} as const;

const F = ENVELOPE_ENTRY_FIELDS;
const INT = /^-?\d{1,19}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A string JSON writes as it is between quotes: no quote, backslash, control character or surrogate. */
// eslint-disable-next-line no-control-regex -- the control characters are what JSON escapes
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** `JSON.stringify(text)`, for a plain string by concatenation (no JSON writer per member). */
function quoted(text: string): string {
  return PLAIN.test(text) ? `"${text}"` : JSON.stringify(text);
}

/**
 * The last source, event, origin and time quoted: they repeat from post to
 * post (one origin per process, one time per millisecond).
 */
const last = {
  source: '',
  sourceQuoted: '""',
  event: '',
  eventQuoted: '""',
  origin: '',
  originQuoted: '""',
  occurredAt: '',
  occurredAtQuoted: '""',
};

/**
 * An envelope as a flat XADD field list. The common header (no key, unique
 * or headers) is joined from quoted members, byte for byte what
 * `JSON.stringify` writes, at about half its cost; the others go through
 * `JSON.stringify`.
 */
export function encodeEnvelopeEntry(envelope: Envelope): string[] {
  if (
    envelope.key === undefined &&
    envelope.unique === undefined &&
    envelope.headers === undefined
  ) {
    const { source, event, origin, occurredAt } = envelope;
    if (source !== last.source) last.sourceQuoted = quoted((last.source = source));
    if (event !== last.event) last.eventQuoted = quoted((last.event = event));
    if (origin !== last.origin) last.originQuoted = quoted((last.origin = origin));
    if (occurredAt !== last.occurredAt)
      last.occurredAtQuoted = quoted((last.occurredAt = occurredAt));
    const header = `[${quoted(envelope.id)},${last.sourceQuoted},${last.eventQuoted},${last.originQuoted},${last.occurredAtQuoted}]`;
    return [F.header, header, F.payload, envelope.payload];
  }
  const header: (string | Readonly<Record<string, string>> | null)[] = [
    envelope.id,
    envelope.source,
    envelope.event,
    envelope.origin,
    envelope.occurredAt,
    envelope.key === undefined ? null : envelope.key.join(','),
    envelope.unique ?? null,
    envelope.headers ?? null,
  ];
  return [F.header, JSON.stringify(header), F.payload, envelope.payload];
}

function decodeKey(text: string): bigint[] {
  if (text === '') return [];
  return text.split(',').map(part => {
    if (!INT.test(part)) throw new StreamEntryError(F.header, `key part '${part}' is not an int64`);
    const value = BigInt(part);
    if (value < INT64_MIN || value > INT64_MAX)
      throw new StreamEntryError(F.header, `key part '${part}' is out of int64 range`);
    return value;
  });
}

function text(header: readonly unknown[], index: number, name: string, nonEmpty: boolean): string {
  const value = header[index];
  if (typeof value !== 'string') throw new StreamEntryError(F.header, `${name} is missing`);
  if (nonEmpty && value === '') throw new StreamEntryError(F.header, `${name} is empty`);
  return value;
}

function optionalText(header: readonly unknown[], index: number, name: string): string | undefined {
  const value = header[index];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new StreamEntryError(F.header, `${name} is not a string`);
  return value;
}

function decodeHeaders(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new StreamEntryError(F.header, 'headers is not an object');
  }
  const headers: Record<string, string> = {};
  for (const [name, item] of Object.entries(value)) {
    if (typeof item !== 'string')
      throw new StreamEntryError(F.header, `headers.${name} is not a string`);
    // defineProperty: a header named `__proto__` stays a header (and never touches the prototype).
    Object.defineProperty(headers, name, {
      value: item,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return headers;
}

function decode(headerText: string | undefined, payload: string | undefined): Envelope {
  if (headerText === undefined) throw new StreamEntryError(F.header, 'missing');
  if (payload === undefined) throw new StreamEntryError(F.payload, 'missing');
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch {
    throw new StreamEntryError(F.header, 'not JSON');
  }
  if (!Array.isArray(header)) throw new StreamEntryError(F.header, 'not an array');
  const source = text(header, 1, 'source', true);
  const event = text(header, 2, 'event', true);
  if (source === '*' || event === '*')
    throw new StreamEntryError(F.header, "'*' is a pattern, not a name");
  const key = optionalText(header, 5, 'key');
  const unique = optionalText(header, 6, 'unique');
  return {
    id: text(header, 0, 'id', true),
    source,
    event,
    payload,
    origin: text(header, 3, 'origin', false),
    occurredAt: text(header, 4, 'occurredAt', false),
    key: key === undefined ? undefined : decodeKey(key),
    unique: unique === '' ? undefined : unique,
    headers: decodeHeaders(header[7]),
  };
}

/**
 * Reads an entry from its flat `[field, value, ...]` list as XREAD returns
 * it, without building a record first (the transport's hot path).
 * @throws StreamEntryError naming the bad field
 */
export function decodeEnvelopeFlat(flat: readonly string[]): Envelope {
  let header: string | undefined;
  let payload: string | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] === F.header) header = flat[i + 1];
    else if (flat[i] === F.payload) payload = flat[i + 1];
  }
  return decode(header, payload);
}

/**
 * Reads an entry written by {@link encodeEnvelopeEntry}, from its fields by name.
 * @throws StreamEntryError naming the bad field
 */
export function decodeEnvelopeEntry(fields: Readonly<Record<string, string>>): Envelope {
  return decode(fields[F.header], fields[F.payload]);
}
