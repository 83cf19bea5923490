import { NOTIFY_SEPARATOR } from './pg.constants.js';

const SEPARATOR_BYTE = NOTIFY_SEPARATOR.charCodeAt(0);
const CLOSE_BYTE = 0x7d; // '}'

/**
 * A payload in two parts, whose text is `head`, then `data`, then `}` (an
 * envelope's members up to its data, the data's JSON text, the close):
 * written part by part, never joined into one string on the common path, so
 * the data's text is never copied in the JS heap (issue 24: a joined 4 KB
 * payload is a rope that any measure or write flattens into a copy).
 */
export interface PgPayloadParts {
  readonly head: string;
  readonly data: string;
}

/**
 * {@link PgPayloadParts} whose head is printable ASCII by construction (the
 * envelope codec's common form: a plain id and members JSON and escapeJson
 * wrote), so it can hold neither the separator nor anything beyond ASCII:
 * {@link packPayloads} writes it without scanning it. Made only by
 * `PgEnvelopeCodec.encodeParts`; any other parts are checked as before.
 */
export class PgPlainHeadParts implements PgPayloadParts {
  constructor(
    readonly head: string,
    readonly data: string,
  ) {}
}

/** A payload to notify: its text, or its {@link PgPayloadParts}. */
export type PgPayload = string | PgPayloadParts;

/** The text of a payload (joined, for the paths that need one string). */
export function payloadText(payload: PgPayload): string {
  return typeof payload === 'string' ? payload : payload.head + payload.data + '}';
}

/** The length of a payload's text, in UTF-16 units. */
export function payloadLength(payload: PgPayload): number {
  return typeof payload === 'string'
    ? payload.length
    : payload.head.length + payload.data.length + 1;
}

/** Writes `text` at `offset`; -1 when it holds the separator or is not pure ASCII. */
function writeAscii(buffer: Buffer, text: string, offset: number): number {
  if (text.indexOf(NOTIFY_SEPARATOR) >= 0) return -1;
  const written = buffer.write(text, offset, 'utf8');
  return written === text.length ? offset + written : -1;
}

/**
 * Payloads packed for one statement that the server splits back
 * (`string_to_array($n::text, chr(30))`): their bytes joined by
 * {@link NOTIFY_SEPARATOR}, written straight into one buffer, which
 * node-postgres sends as it is (a string parameter is measured and encoded
 * again, and a JSON array escapes every quote of every payload, which the
 * server then parses back). Undefined when a payload holds the separator or
 * is not pure ASCII (every payload pg-hub encodes is): the caller sends a
 * JSON array then. ASCII is checked by the write itself: a payload's UTF-8
 * is longer than its UTF-16 length exactly when it holds anything else, and
 * the 4 spare bytes make a write cut short by the end of the buffer longer
 * too. A {@link PgPayloadParts} is written part by part (its text is never
 * joined).
 */
export function packPayloads(payloads: readonly PgPayload[]): Buffer | undefined {
  let size = payloads.length - 1 + 4;
  for (let i = 0; i < payloads.length; i++) size += payloadLength(payloads[i]);
  const buffer = Buffer.allocUnsafe(size);
  let offset = 0;
  for (let i = 0; i < payloads.length; i++) {
    const payload = payloads[i];
    if (i > 0) buffer[offset++] = SEPARATOR_BYTE;
    if (typeof payload === 'string') offset = writeAscii(buffer, payload, offset);
    else {
      // A plain head is ASCII without the separator (see PgPlainHeadParts):
      // latin1 writes its bytes as they are, with no scan for the separator.
      offset =
        payload instanceof PgPlainHeadParts
          ? offset + buffer.write(payload.head, offset, 'latin1')
          : writeAscii(buffer, payload.head, offset);
      if (offset >= 0) offset = writeAscii(buffer, payload.data, offset);
      if (offset >= 0) buffer[offset++] = CLOSE_BYTE;
    }
    if (offset < 0) return undefined;
  }
  return buffer.subarray(0, offset);
}
