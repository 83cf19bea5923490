import { EnvelopeRecord } from '../../common/envelope-record.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import { StreamEntryError } from './redis.errors.js';
import type { StreamEntryFields, ValueAffix } from './stream.publisher.options.js';

/**
 * The transport's entry layouts (`heraldEntry` of the transport's options).
 * Each carries a header (the envelope's id, source, event, origin and
 * occurredAt, and its key, unique and headers when it has them) and the
 * codec's payload text as it is.
 *
 * - `compact` (the default): one field, `herald`, whose value is `~`, the
 *   id, source, event, origin and occurredAt (as the decimal milliseconds
 *   since the epoch of its ISO time) separated by one space, one newline
 *   (U+000A), then the payload to the end of the value:
 *   `~<id> orders created <origin> 1764940583123`, `\n`, `{"n":1}`. The
 *   members hold no space or control character and are not empty, and
 *   occurredAt is the canonical ISO text of its milliseconds (what a post
 *   makes): an envelope that does not fit (a key, unique or headers, a name
 *   with a space, a custom time text) is written `one-field` instead, which
 *   readers of this version read too.
 * - `one-field`: one field, `herald`, whose value is the JSON header's text,
 *   one newline, then the payload: `["<id>","orders","created","<origin>","<time>"]`,
 *   `\n`, `{"n":1}`. The JSON header is the text `JSON.stringify` writes of
 *   the array `[id, source, event, origin, occurredAt]` when the post has no
 *   key, unique or headers, else of `[id, source, event, origin, occurredAt,
 *   key, unique, headers]` with `null` for the absent ones (`key`
 *   comma-joined decimal int64s, `headers` an object of strings). Readers take
 *   any JSON array of that shape (trailing members left out read as absent).
 *   JSON text holds no raw newline (JSON.stringify writes one inside a string
 *   as `\n`), so the first newline of the value ends the header; the payload
 *   may hold any text, newlines included, or be empty.
 * - `two-field` (the versions before `one-field`): `herald`, the JSON
 *   header's text, and `payload`, the payload.
 *
 * A reader tells them apart by the `payload` field (two-field) and, without
 * it, by the value's first character: `~` compact, `[` one-field; anything
 * else is not an event. Readers read all three; readers of earlier versions
 * do not read the newer layouts (`entry-not-an-event` to them:
 * dead-lettered), hence the option.
 *
 * Compact, because the Redis server pays per byte of an entry as well as
 * per entry: it copies each value some ten times between the write script,
 * the stream, the read script and the replies: about 9–13 ns per byte on
 * top of 3.5 µs per entry (a private Redis, `INFO commandstats`, 1000
 * entries a call). With bench:redis's 125-byte payload the JSON header
 * makes a 230-byte entry and the compact one a 208-byte entry. One field
 * rather than two because the Redis server also pays per field: the XADD's
 * argument pair, the XREADGROUP reply's strings, the read script's framing
 * (callgrind, per event: write script 25,200 -> 21,200 instructions, read
 * script 35,900 -> 29,900). A few fields rather than one per envelope
 * member, because the Node client's reply parsing costs per string.
 * @publicApi
 */
export type HeraldEntryLayout = 'compact' | 'one-field' | 'two-field';

/** The field names of the herald layout (see {@link HeraldEntryLayout}). @publicApi */
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
 * The last source, event, origin and time, and the header's text after the
 * id they make: they repeat from post to post (one origin per process, one
 * time per run of posts), so a header is three pieces, not eleven.
 */
const last: {
  source: string;
  event: string;
  origin: string;
  occurredAt: string;
  tail: string;
  /** {@link envelopeAffix}'s answer for this tail, made on first use. */
  affix: ValueAffix | undefined;
  /** {@link encodeEnvelopeParts}'s text after the id: `",`, the tail, the newline; made on first use. */
  afterId: string | undefined;
  /**
   * {@link encodeCompactParts}'s text after the id: a space, the members
   * after the id (see {@link compactMembers}), the newline; null when they
   * do not fit the compact layout; made on first use.
   */
  compactAfterId: string | null | undefined;
} = {
  source: '',
  event: '',
  origin: '',
  occurredAt: '',
  tail: '"","","",""]',
  affix: undefined,
  afterId: undefined,
  compactAfterId: undefined,
};

/** No key, unique or headers: the header is its id and the four members after it. */
function common(envelope: Envelope): boolean {
  return (
    envelope.key === undefined && envelope.unique === undefined && envelope.headers === undefined
  );
}

/** The text after the id of a common header (see {@link last}). */
function tailOf(envelope: Envelope): string {
  const { source, event, origin, occurredAt } = envelope;
  if (
    source !== last.source ||
    event !== last.event ||
    origin !== last.origin ||
    occurredAt !== last.occurredAt
  ) {
    last.source = source;
    last.event = event;
    last.origin = origin;
    last.occurredAt = occurredAt;
    last.tail = `${quoted(source)},${quoted(event)},${quoted(origin)},${quoted(occurredAt)}]`;
    last.affix = undefined;
    last.afterId = undefined;
    last.compactAfterId = undefined;
  }
  return last.tail;
}

/** The header's JSON text (see {@link HeraldEntryLayout}). */
function headerText(envelope: Envelope): string {
  if (common(envelope)) return `[${quoted(envelope.id)},${tailOf(envelope)}`;
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
  return JSON.stringify(header);
}

/**
 * An envelope as a flat XADD field list, in `entry` layout (see
 * {@link HeraldEntryLayout}): in `compact`, an envelope that does not fit
 * the compact header is laid out `one-field`. The JSON header of a common
 * envelope (no key, unique or headers) is joined from quoted members, byte
 * for byte what `JSON.stringify` writes, at about half its cost; the others
 * go through `JSON.stringify`.
 * @param entry `compact` (the default, what the transport writes), `one-field` or `two-field`
 */
export function encodeEnvelopeEntry(
  envelope: Envelope,
  entry: HeraldEntryLayout = 'compact',
): string[] {
  if (entry === 'compact') {
    const [name, value] = encodeCompactParts(envelope) as [string, readonly string[]];
    return [name, value.join('')];
  }
  const header = headerText(envelope);
  if (entry === 'two-field') return [F.header, header, F.payload, envelope.payload];
  return [F.header, `${header}\n${envelope.payload}`];
}

/**
 * What the transport's publisher writes in layout `one-field`: the entry of
 * {@link encodeEnvelopeEntry}, its value in parts the publisher writes one
 * after the other into the command, so Node makes no joined string (a copy
 * of the payload per event): for a common header with a plain id, `["`, the
 * id, then `",`, the members after it and the newline (one string per run
 * of posts), then the payload.
 */
export function encodeEnvelopeParts(envelope: Envelope): StreamEntryFields {
  if (common(envelope) && PLAIN.test(envelope.id)) {
    const tail = tailOf(envelope);
    const afterId = (last.afterId ??= `",${tail}\n`);
    return [F.header, ['["', envelope.id, afterId, envelope.payload]];
  }
  return [F.header, [headerText(envelope), '\n', envelope.payload]];
}

/**
 * A member the compact header writes: not empty, no space or control
 * character, and no UTF-16 surrogate (a lone one would not survive the
 * UTF-8 on the wire, which JSON escapes; pairs go the JSON way too, for one
 * simple test). Readers take any non-empty member without space or control
 * character.
 */
// eslint-disable-next-line no-control-regex -- the control characters are what the layout excludes
const COMPACT_MEMBER = /^[^\u0000-\u0020\u007f\ud800-\udfff]+$/;
/** The compact layout's first character (see {@link HeraldEntryLayout}); a JSON header's is `[`. */
const COMPACT_MARK = '~';

/**
 * The members after the id of a compact header, as written (`source event
 * origin ms`), or null when one does not fit: checked once per run of posts
 * (see {@link last}), not per post.
 */
function compactMembers(envelope: Envelope): string | null {
  const { source, event, origin, occurredAt } = envelope;
  const ms = Date.parse(occurredAt);
  if (
    !COMPACT_MEMBER.test(source) ||
    !COMPACT_MEMBER.test(event) ||
    !COMPACT_MEMBER.test(origin) ||
    !(ms >= 0) ||
    // Only the canonical ISO text of its milliseconds reads back as the same string.
    new Date(ms).toISOString() !== occurredAt
  )
    return null;
  return `${source} ${event} ${origin} ${ms}`;
}

/**
 * What the transport's publisher writes in layout `compact` (the default),
 * in parts as {@link encodeEnvelopeParts}: `~`, the id, then a space, the
 * members after it and the newline (one string per run of posts), then the
 * payload; an envelope that does not fit the compact header (see
 * {@link HeraldEntryLayout}) as {@link encodeEnvelopeParts} writes it.
 */
export function encodeCompactParts(envelope: Envelope): StreamEntryFields {
  if (common(envelope) && COMPACT_MEMBER.test(envelope.id)) {
    tailOf(envelope);
    let afterId = last.compactAfterId;
    if (afterId === undefined) {
      const members = compactMembers(envelope);
      afterId = last.compactAfterId = members === null ? null : ` ${members}\n`;
    }
    if (afterId !== null) return [F.header, [COMPACT_MARK, envelope.id, afterId, envelope.payload]];
  }
  return encodeEnvelopeParts(envelope);
}

/**
 * What the transport's publisher writes in layout `two-field`, with
 * {@link envelopeAffix}: the fields of {@link encodeEnvelopeEntry}, except that a common header goes
 * as its id alone, which the publisher writes as JSON string content and
 * Redis wraps in `["` before and `",` and the members after the id behind
 * (the affix): the entry holds the very text of {@link encodeEnvelopeEntry},
 * and the members after the id, which repeat from post to post, cross the
 * wire once per run of posts.
 */
export function encodeEnvelopeValues(envelope: Envelope): string[] {
  if (!common(envelope)) return encodeEnvelopeEntry(envelope, 'two-field');
  return [F.header, envelope.id, F.payload, envelope.payload];
}

/**
 * The affix of {@link encodeEnvelopeValues}'s header: one object for as
 * long as the members after the id stay the same; undefined for a header
 * with key, unique or headers (written whole).
 */
export function envelopeAffix(envelope: Envelope): ValueAffix | undefined {
  if (!common(envelope)) return undefined;
  const tail = tailOf(envelope);
  return (last.affix ??= { index: 1, prefix: '["', suffix: `",${tail}`, json: true });
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

/** The members after the id of the last header of a layout read, as text and as strings. */
interface Seen {
  tail: string;
  source: string;
  event: string;
  origin: string;
  occurredAt: string;
}

/**
 * The envelope of a header whose members after the id are byte for byte
 * those of `seen` (already read and checked): the same values. No key,
 * unique or headers members: the shape of a post's envelope
 * (EnvelopeFactory), 24 bytes fewer per event than with them undefined.
 */
function seenEnvelope(seen: Seen, id: string, payload: string): Envelope {
  return new EnvelopeRecord(id, seen.source, seen.event, payload, seen.origin, seen.occurredAt);
}

/**
 * The members after the id of the last header read with no key, unique or
 * headers, as text and as strings: from a post to the next only the id
 * changes (one source and event per stream, one origin per poster, one time
 * per run of posts), so most headers are `["<id>",` followed by exactly this
 * text, and reading one takes a slice (the id) instead of JSON.parse and
 * five new strings.
 */
const seen: Seen = { tail: '', source: '', event: '', origin: '', occurredAt: '' };

/** An id JSON.parse reads as the very characters between its quotes: no escape, no control character. */
// eslint-disable-next-line no-control-regex -- the control characters are what JSON refuses raw
const PLAIN_ID = /^[^\\\u0000-\u001f]+$/;

/**
 * A plain id (as {@link PLAIN_ID}, no quote either) and its closing quote,
 * matched from `lastIndex` in place: no slice to test, no scan for the quote.
 */
// eslint-disable-next-line no-control-regex -- the control characters are what JSON refuses raw
const PLAIN_ID_AT = /[^"\\\u0000-\u001f]+"/y;

/**
 * A one-field value whose header is `["<plain id>",`, then exactly the
 * members of the last header read (see {@link seen}), then the newline:
 * its envelope, found with one regular expression test, one comparison and
 * two slices (no scan for the newline through the header, no slice to
 * compare, no second test of the id: about 1,450 instructions per entry
 * instead of 1,770, callgrind); else undefined (read the long way).
 */
function decodeSeenOneField(value: string): Envelope | undefined {
  const tail = seen.tail;
  if (tail === '' || value.charCodeAt(0) !== 0x5b || value.charCodeAt(1) !== 0x22) return undefined;
  PLAIN_ID_AT.lastIndex = 2;
  if (!PLAIN_ID_AT.test(value)) return undefined;
  const close = PLAIN_ID_AT.lastIndex - 1;
  // The members hold no raw newline (JSON text), nor does the id: this is the value's first one.
  const end = close + 2 + tail.length;
  if (
    value.charCodeAt(close + 1) !== 0x2c ||
    value.charCodeAt(end) !== 0x0a ||
    value.slice(close + 2, end) !== tail
  )
    return undefined;
  return seenEnvelope(seen, value.slice(2, close), value.slice(end + 1));
}

/**
 * Where the id's closing quote is, when the header `text[0..end)` opens as
 * `["<id>",` (the id not yet checked); else -1.
 */
function idEnd(text: string, end: number): number {
  if (text.charCodeAt(0) !== 0x5b || text.charCodeAt(1) !== 0x22) return -1;
  const close = text.indexOf('"', 2);
  return close > 2 && close + 1 < end && text.charCodeAt(close + 1) === 0x2c ? close : -1;
}

/**
 * The members after the id of the last compact header read, as text and as
 * strings (see {@link seen}, the same for JSON headers): a compact header is
 * then read with one regular expression test, one comparison and two slices.
 */
const seenCompact: Seen = { tail: '', source: '', event: '', origin: '', occurredAt: '' };

/** A compact header's id and the space after it, matched from `lastIndex` (1, after the mark) in place. */
// eslint-disable-next-line no-control-regex -- the control characters are what the layout excludes
const COMPACT_ID_AT = /[^\u0000-\u0020\u007f]+ /y;
/** A compact header's members after the id, and the milliseconds of its time. */
const COMPACT_MEMBERS =
  // eslint-disable-next-line no-control-regex -- the control characters are what the layout excludes
  /^([^\u0000-\u0020\u007f]+) ([^\u0000-\u0020\u007f]+) ([^\u0000-\u0020\u007f]+) (\d{1,16})$/;
/** The latest time a Date holds: 8.64e15 ms after the epoch. */
const MAX_DATE_MS = 8.64e15;

/** A compact value (see {@link HeraldEntryLayout}), its first character `~`. */
function decodeCompact(value: string): Envelope {
  COMPACT_ID_AT.lastIndex = 1;
  if (!COMPACT_ID_AT.test(value))
    throw new StreamEntryError(
      F.header,
      'compact header: no id (not empty, no space or control character) and a space after it',
    );
  const space = COMPACT_ID_AT.lastIndex - 1;
  const tail = seenCompact.tail;
  const end = space + 1 + tail.length;
  // The members hold no newline: the one at `end` is the value's first.
  if (tail !== '' && value.charCodeAt(end) === 0x0a && value.slice(space + 1, end) === tail)
    return seenEnvelope(seenCompact, value.slice(1, space), value.slice(end + 1));
  const newline = value.indexOf('\n', space);
  if (newline < 0) throw new StreamEntryError(F.header, 'compact header: no newline ends it');
  const members = value.slice(space + 1, newline);
  const match = COMPACT_MEMBERS.exec(members);
  if (match === null)
    throw new StreamEntryError(
      F.header,
      `compact header: '${members.length > 120 ? `${members.slice(0, 120)}…` : members}' is not 'source event origin milliseconds'`,
    );
  const [, source, event, origin, digits] = match;
  if (source === '*' || event === '*')
    throw new StreamEntryError(F.header, "'*' is a pattern, not a name");
  const ms = Number(digits);
  if (ms > MAX_DATE_MS)
    throw new StreamEntryError(F.header, `compact header: time ${digits} ms is out of range`);
  const occurredAt = new Date(ms).toISOString();
  seenCompact.tail = members;
  seenCompact.source = source;
  seenCompact.event = event;
  seenCompact.origin = origin;
  seenCompact.occurredAt = occurredAt;
  return new EnvelopeRecord(
    value.slice(1, space),
    source,
    event,
    value.slice(newline + 1),
    origin,
    occurredAt,
  );
}

/**
 * An entry from its `herald` and `payload` fields: two-field when `payload`
 * is there, else compact (`~` first) or one-field (the header up to the
 * first newline of `herald`, the payload after it).
 */
function decode(herald: string | undefined, payload: string | undefined): Envelope {
  if (herald === undefined) throw new StreamEntryError(F.header, 'missing');
  if (payload !== undefined) return decodeHeader(herald, herald.length, payload);
  if (herald.charCodeAt(0) === 0x7e) return decodeCompact(herald);
  const known = decodeSeenOneField(herald);
  if (known !== undefined) return known;
  const newline = herald.indexOf('\n');
  if (newline < 0)
    throw new StreamEntryError(
      F.payload,
      "missing, and no newline ends the header in 'herald' (neither layout)",
    );
  // A slice of the value, no copy (V8 keeps the value; the payload is read and dropped with it).
  return decodeHeader(herald, newline, herald.slice(newline + 1));
}

/**
 * The envelope of the header `text[0..end)`: the whole field (two-field)
 * or the value up to its newline (one-field), read in place.
 */
function decodeHeader(text: string, end: number, payload: string): Envelope {
  const close = idEnd(text, end);
  const tail = seen.tail;
  if (
    close > 0 &&
    tail !== '' &&
    end - close - 2 === tail.length &&
    // A slice and one comparison: half the instructions of endsWith (callgrind).
    text.slice(close + 2, end) === tail
  ) {
    const id = text.slice(2, close);
    // Byte for byte the members of a header already read (and checked): the same values.
    if (PLAIN_ID.test(id)) return seenEnvelope(seen, id, payload);
  }
  const headerText = end === text.length ? text : text.slice(0, end);
  const envelope = decodeParsed(headerText, payload);
  if (
    close > 0 &&
    envelope.key === undefined &&
    envelope.unique === undefined &&
    envelope.headers === undefined &&
    PLAIN_ID.test(headerText.slice(2, close))
  ) {
    seen.tail = headerText.slice(close + 2);
    seen.source = envelope.source;
    seen.event = envelope.event;
    seen.origin = envelope.origin;
    seen.occurredAt = envelope.occurredAt;
  }
  return envelope;
}

/** The header through JSON.parse, every member checked. */
function decodeParsed(headerText: string, payload: string): Envelope {
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
  // Checked in this order: the first bad member is the one named.
  const keyText = optionalText(header, 5, 'key');
  const uniqueText = optionalText(header, 6, 'unique');
  const id = text(header, 0, 'id', true);
  const origin = text(header, 3, 'origin', false);
  const occurredAt = text(header, 4, 'occurredAt', false);
  const key = keyText === undefined ? undefined : decodeKey(keyText);
  const unique = uniqueText === '' ? undefined : uniqueText;
  const headers = decodeHeaders(header[7]);
  // The common header: the shape of the fast paths' envelopes (no member undefined).
  if (key === undefined && unique === undefined && headers === undefined)
    return new EnvelopeRecord(id, source, event, payload, origin, occurredAt);
  return { id, source, event, payload, origin, occurredAt, key, unique, headers };
}

/**
 * Reads an entry of either layout from its flat `[field, value, ...]` list
 * as XREAD returns it, without building a record first (the transport's hot
 * path).
 * @throws StreamEntryError naming the bad field
 */
export function decodeEnvelopeFlat(flat: readonly string[]): Envelope {
  // One-field, the common case: no loop.
  if (flat.length === 2 && flat[0] === F.header) return decode(flat[1], undefined);
  let header: string | undefined;
  let payload: string | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] === F.header) header = flat[i + 1];
    else if (flat[i] === F.payload) payload = flat[i + 1];
  }
  return decode(header, payload);
}

/**
 * Reads an entry written by {@link encodeEnvelopeEntry}, of either layout, from its fields by name.
 * @throws StreamEntryError naming the bad field
 */
export function decodeEnvelopeEntry(fields: Readonly<Record<string, string>>): Envelope {
  return decode(fields[F.header], fields[F.payload]);
}
