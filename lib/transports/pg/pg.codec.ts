import { InvalidEventError } from '../../common/errors.js';
import { jsonCodec } from '../../common/json.codec.js';
import { INT64_MAX, INT64_MIN, PG_TOPIC_PATTERN } from './pg.constants.js';
import { InvalidTopicError, PgDecodeError } from './pg.errors.js';

/** A pg-hub key: an ordered list of int64. @publicApi */
export type PgKey = readonly bigint[];

/** What a key may be given as: a list, one bigint, or nothing. @publicApi */
export type PgKeyInput = readonly (bigint | number)[] | bigint | number | null | undefined;

/** A decoded pg-hub payload. @publicApi */
export interface DecodedPgEvent {
  readonly key: PgKey;
  readonly value: unknown;
}

const EMPTY_KEY: PgKey = Object.freeze([]) as PgKey;
/** `$` (it could close the originals' `$$...$$` quoting) and every non-ASCII UTF-16 unit. */
const NEEDS_ESCAPE = /[$\u0080-\uffff]/;
const NEEDS_ESCAPE_ALL = /[$\u0080-\uffff]/g;
const KEY_PART = /^-?[0-9]{1,19}$/;

function escapeUnit(unit: string): string {
  return '\\u' + unit.charCodeAt(0).toString(16).padStart(4, '0');
}

/**
 * Makes JSON text pure ASCII and free of `$`: each `$` and each non-ASCII
 * UTF-16 unit becomes a `\uXXXX` escape. Outside strings JSON has neither,
 * so the text still parses to the same value, in any client encoding, in
 * both pg-hub originals.
 */
export function escapeJson(json: string): string {
  // The common case first, by two native scans (a UTF-8 length equal to the
  // UTF-16 length means pure ASCII): a regular expression's scan costs some
  // 10 µs on a 4 KB text, these two well under one.
  if (json.indexOf('$') < 0 && Buffer.byteLength(json) === json.length) return json;
  return NEEDS_ESCAPE.test(json) ? json.replace(NEEDS_ESCAPE_ALL, escapeUnit) : json;
}

/** Validates a topic; throws {@link InvalidTopicError}. @publicApi */
export function validateTopic(topic: unknown): string {
  if (typeof topic !== 'string' || !PG_TOPIC_PATTERN.test(topic))
    throw new InvalidTopicError(topic);
  return topic;
}

/** Normalises and validates a key; throws {@link InvalidEventError}. @publicApi */
export function normalizeKey(key: PgKeyInput): PgKey {
  if (key === null || key === undefined) return EMPTY_KEY;
  const list = typeof key === 'bigint' || typeof key === 'number' ? [key] : key;
  if (!Array.isArray(list))
    throw new InvalidEventError('key must be a bigint or an array of int64 values');
  return list.map((part: unknown, i) => {
    if (typeof part === 'number' && Number.isSafeInteger(part)) return BigInt(part);
    if (typeof part === 'bigint' && part >= INT64_MIN && part <= INT64_MAX) return part;
    throw new InvalidEventError(`key[${i}] must be an int64 (a bigint, or a safe integer number)`);
  });
}

/**
 * Builds the payload from a validated key and JSON text (`undefined` = no
 * value): `e`, the keys joined by `,`, then `:` and the escaped JSON.
 */
export function encodePayload(key: PgKey, json: string | undefined): string {
  let payload = key.length === 0 ? 'e' : 'e' + key.join(',');
  if (json !== undefined && json !== 'null') payload += ':' + escapeJson(json);
  return payload;
}

/**
 * Encodes a pg-hub event payload: `e` + comma-joined int64 keys + optionally
 * `:` and compact JSON, pure ASCII (`$` and non-ASCII as `\uXXXX`). A null or
 * undefined value gives no `:` part (as the Go original). Data JSON would
 * change or drop is refused with a `SerializationError`, a bad key with an
 * `InvalidEventError`.
 * @publicApi
 */
export function encodeEvent(key: PgKeyInput, value?: unknown): string {
  const normalized = normalizeKey(key);
  const json = value === undefined || value === null ? undefined : jsonCodec.encode(value);
  return encodePayload(normalized, json);
}

/**
 * Splits a payload into its key and the JSON text of its value (`undefined`
 * for none). Throws {@link PgDecodeError}.
 */
export function splitPayload(payload: string): { key: PgKey; json: string | undefined } {
  if (typeof payload !== 'string' || payload.length === 0) throw new PgDecodeError('empty payload');
  if (payload.charCodeAt(0) !== 0x65 /* e */) throw new PgDecodeError('does not start with "e"');
  const colon = payload.indexOf(':');
  const keyText = colon < 0 ? payload.slice(1) : payload.slice(1, colon);
  let key = EMPTY_KEY;
  if (keyText.length > 0) {
    const parts = keyText.split(',');
    const keys: bigint[] = new Array(parts.length);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (!KEY_PART.test(part))
        throw new PgDecodeError(`malformed key ${JSON.stringify(part.slice(0, 40))}`);
      const value = BigInt(part);
      if (value < INT64_MIN || value > INT64_MAX)
        throw new PgDecodeError(`key ${part} is outside int64`);
      keys[i] = value;
    }
    key = Object.freeze(keys);
  }
  const json = colon < 0 ? undefined : payload.slice(colon + 1);
  return { key, json: json === '' ? undefined : json };
}

/**
 * Decodes a pg-hub payload. Accepts `e` and `e:null` (value null), keeps
 * every key's sign, and throws {@link PgDecodeError} for anything else:
 * no leading `e`, malformed or out-of-range keys, bad JSON.
 * @publicApi
 */
export function decodeEvent(payload: string): DecodedPgEvent {
  const { key, json } = splitPayload(payload);
  if (json === undefined) return { key, value: null };
  try {
    return { key, value: JSON.parse(json) };
  } catch (error) {
    throw new PgDecodeError(`bad JSON value (${(error as Error).message})`);
  }
}
