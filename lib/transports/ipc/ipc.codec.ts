import type { Envelope } from '../../interfaces/envelope.interface.js';
import { BodyReader, type FrameWriter } from './ipc.frame.js';
import { IpcProtocolError } from './ipc.errors.js';
import type { StringCache } from './ipc.string-cache.js';

/*
 * An event body, the same bytes from poster to broker to every worker (the
 * broker never re-encodes it):
 *   u8 flags (1 = unique, 2 = key, 4 = headers)
 *   [str unique] str id, str source, str event, str origin, str occurredAt
 *   [str key: decimal int64s joined by ','] [str headers: JSON object of strings]
 *   str payload (the bus codec's text)
 * where str = u32 byte length + UTF-8. `unique` comes first so the broker
 * reads only it.
 */
const F_UNIQUE = 1;
const F_KEY = 2;
const F_HEADERS = 4;
const INT64 = /^-?\d{1,19}$/;

export function encodeEventBody(w: FrameWriter, envelope: Envelope): void {
  const flags =
    (envelope.unique !== undefined ? F_UNIQUE : 0) |
    (envelope.key !== undefined ? F_KEY : 0) |
    (envelope.headers !== undefined ? F_HEADERS : 0);
  w.u8(flags);
  if (envelope.unique !== undefined) w.str(envelope.unique);
  w.str(envelope.id);
  w.str(envelope.source);
  w.str(envelope.event);
  w.str(envelope.origin);
  w.str(envelope.occurredAt);
  if (envelope.key !== undefined) w.str(envelope.key.join(','));
  if (envelope.headers !== undefined) w.str(JSON.stringify(envelope.headers));
  w.str(envelope.payload);
}

function parseKey(text: string): bigint[] {
  if (text === '') return [];
  return text.split(',').map(part => {
    if (!INT64.test(part))
      throw new IpcProtocolError(`key part '${part.slice(0, 32)}' is not an int64`);
    return BigInt(part);
  });
}

function parseHeaders(text: string): Record<string, string> {
  let headers: unknown;
  try {
    headers = JSON.parse(text);
  } catch {
    throw new IpcProtocolError('headers are not JSON');
  }
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new IpcProtocolError('headers are not an object');
  }
  for (const value of Object.values(headers)) {
    if (typeof value !== 'string') throw new IpcProtocolError('a header value is not a string');
  }
  return headers as Record<string, string>;
}

/** Where an event's id lies in the frame (its UTF-8 bytes), as found by {@link decodeEventBody}. */
export interface IdSpan {
  idStart: number;
  idEnd: number;
}

/**
 * Decodes an event body. `span`, when given, is told where the id's bytes
 * lie; `names`, when given, decodes the fields that repeat (source, event,
 * origin, occurredAt) through that cache.
 */
export function decodeEventBody(r: BodyReader, span?: IdSpan, names?: StringCache): Envelope {
  const flags = r.u8('flags');
  if (flags > 7) throw new IpcProtocolError(`unknown event flags ${flags}`);
  const unique = flags & F_UNIQUE ? r.str('unique') : undefined;
  const id = r.str('id');
  if (span) {
    span.idStart = r.strStart;
    span.idEnd = r.pos;
  }
  const source = names ? r.cachedStr('source', names) : r.str('source');
  const event = names ? r.cachedStr('event', names) : r.str('event');
  const origin = names ? r.cachedStr('origin', names) : r.str('origin');
  const occurredAt = names ? r.cachedStr('occurredAt', names) : r.str('occurredAt');
  const key = flags & F_KEY ? parseKey(r.str('key')) : undefined;
  const headers = flags & F_HEADERS ? parseHeaders(r.str('headers')) : undefined;
  const payload = r.str('payload');
  r.done('event');
  return { id, source, event, payload, key, unique, origin, occurredAt, headers };
}

/** What the broker needs of a body: its unique key; checks the layout without decoding the rest. */
export interface BodyScan {
  unique: string | undefined;
  payloadBytes: number;
}

export function scanEventBody(r: BodyReader, into: BodyScan): BodyScan {
  const flags = r.u8('flags');
  if (flags > 7) throw new IpcProtocolError(`unknown event flags ${flags}`);
  into.unique = flags & F_UNIQUE ? r.str('unique') : undefined;
  if (into.unique === '') throw new IpcProtocolError('empty unique key');
  for (const field of ['id', 'source', 'event'] as const) {
    if (r.skipStr(field) === 0) throw new IpcProtocolError(`empty ${field}`);
  }
  r.skipStr('origin');
  r.skipStr('occurredAt');
  if (flags & F_KEY) r.skipStr('key');
  if (flags & F_HEADERS) r.skipStr('headers');
  into.payloadBytes = r.skipStr('payload');
  r.done('event');
  return into;
}

/** `source/event` of a body, for log lines about it; never its data. */
export function describeEventBody(body: Buffer): string {
  try {
    const r = new BodyReader().reset(body, 0, body.length);
    const flags = r.u8('flags');
    if (flags & F_UNIQUE) r.skipStr('unique');
    const id = r.str('id');
    const source = r.str('source');
    const event = r.str('event');
    const origin = r.str('origin');
    return `${source}/${event} (id ${id}, origin ${origin})`;
  } catch {
    return '(undecodable event)';
  }
}
