import { NOTIFY_SEPARATOR } from './pg.constants.js';

const SEPARATOR_BYTE = NOTIFY_SEPARATOR.charCodeAt(0);

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
 * too.
 */
export function packPayloads(payloads: readonly string[]): Buffer | undefined {
  let size = payloads.length - 1 + 4;
  for (let i = 0; i < payloads.length; i++) size += payloads[i].length;
  const buffer = Buffer.allocUnsafe(size);
  let offset = 0;
  for (let i = 0; i < payloads.length; i++) {
    const payload = payloads[i];
    if (payload.indexOf(NOTIFY_SEPARATOR) >= 0) return undefined;
    if (i > 0) buffer[offset++] = SEPARATOR_BYTE;
    const written = buffer.write(payload, offset, 'utf8');
    if (written !== payload.length) return undefined;
    offset += written;
  }
  return buffer.subarray(0, offset);
}
