import { isUtf8 } from 'node:buffer';
import { fieldsToRecord } from './stream-event.js';

/**
 * An entry as read: id, flat fields (null for an entry deleted meanwhile),
 * and, only when a field is not valid UTF-8, the original bytes of every
 * field (for the dead-letter stream) and the first bad field's name.
 */
export type RawEntry = [id: string, fields: string[] | null, bytes?: RawBytes];

/** The original bytes of an entry that is not valid UTF-8. */
export interface RawBytes {
  readonly fields: readonly Buffer[];
  /** The first field (name or value) that is not valid UTF-8, as text with U+FFFD. */
  readonly badField: string;
}

/** One entry handed to a handler. @publicApi */
export interface StreamMessage {
  readonly stream: string;
  readonly id: string;
  readonly fields: Readonly<Record<string, string>>;
  /** The entry's fields as read: `[field, value, ...]`. */
  readonly raw: readonly string[];
  /** 1 on first delivery; Redis's delivery count (XPENDING) on redeliveries. */
  readonly deliveries: number;
  readonly group?: string;
  readonly consumer?: string;
}

/** An entry as read, with `fields` built on first use (the transport decodes `raw` directly). */
export class EntryMessage implements StreamMessage {
  private record?: Readonly<Record<string, string>>;

  constructor(
    readonly stream: string,
    readonly id: string,
    readonly raw: readonly string[],
    readonly deliveries: number,
    readonly group?: string,
    readonly consumer?: string,
  ) {}

  get fields(): Readonly<Record<string, string>> {
    return (this.record ??= fieldsToRecord(this.raw));
  }
}

/** The id and field list of an entry read as Buffers (ioredis's `*Buffer` commands). */
export type BufferEntry = [id: Buffer | string, fields: (Buffer | string)[] | null];

/**
 * Turns an entry read as Buffers into a {@link RawEntry}, keeping the bytes
 * when a field is not valid UTF-8 (text would silently hold U+FFFD).
 */
export function entryFromBuffers(entry: BufferEntry): RawEntry {
  const id = String(entry[0]);
  const raw = entry[1];
  if (!raw) return [id, null];
  const fields = new Array<string>(raw.length);
  let badField: string | undefined;
  for (let i = 0; i < raw.length; i++) {
    const value = raw[i];
    fields[i] = String(value);
    if (badField === undefined && Buffer.isBuffer(value) && !isUtf8(value)) badField = fields[i];
  }
  if (badField === undefined) return [id, fields];
  return [
    id,
    fields,
    { fields: raw.map(f => (Buffer.isBuffer(f) ? f : Buffer.from(f))), badField },
  ];
}

/** A gap the read script found: entries trimmed before the group read them. */
export interface TrimmedGap {
  /** How many; undefined when Redis cannot tell (no `entries-read` before Redis 7). */
  readonly lost?: number;
  /** The group's last-delivered-id before the gap (exclusive). */
  readonly after: string;
  /** The first entry still in the stream (exclusive). */
  readonly before: string;
}

/** Reads the `#<lost|?> <after> <before>` line the gap check returns. */
export function parseGap(line: string): TrimmedGap | undefined {
  const match = /^#(\d+|\?) (\S+) (\S+)$/.exec(line);
  if (!match) return undefined;
  return {
    lost: match[1] === '?' ? undefined : Number(match[1]),
    after: match[2],
    before: match[3],
  };
}

/** Field names reused from entry to entry: the first this many fields (names and values). */
const MAX_NAMES = 32;
/** Longer names are decoded each time: comparing them in JS would cost more. */
const MAX_NAME_BYTES = 64;

/** The bytes `buffer[start..end)` are exactly `text`, every character of it ASCII. */
function sameAscii(buffer: Buffer, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 127 || buffer[start + i] !== code) return false;
  }
  return true;
}

function framedNumber(buffer: Buffer, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + buffer[i] - 48;
  return value;
}

/** What the read script returns: a gap, if any, then the entries. */
export interface FramedRead {
  readonly entries: RawEntry[];
  readonly gap?: TrimmedGap;
}

/**
 * Parses the read script's reply ({@link READ_BATCH} in redis.scripts.ts).
 * The whole reply is checked for UTF-8 once: every field is framed by ASCII
 * (its size line before, the next line after), so a reply that is valid
 * UTF-8 has every field valid, and only a reply that is not is checked field
 * by field (to dead-letter the bad entries with their bytes).
 */
export function parseFramedEntries(buffer: Buffer): FramedRead {
  const entries: RawEntry[] = [];
  const length = buffer.length;
  let at = 0;
  let gap: TrimmedGap | undefined;
  if (length > 0 && buffer[0] === 35 /* # */) {
    const newline = buffer.indexOf(10);
    if (newline < 0) throw new Error('malformed read script reply');
    gap = parseGap(buffer.toString('latin1', 0, newline));
    at = newline + 1;
  }
  const valid = isUtf8(buffer);
  const names: string[] = [];
  while (at < length) {
    let newline = buffer.indexOf(10, at);
    if (newline < 0) throw new Error('malformed read script reply');
    const id = buffer.toString('latin1', at, newline);
    at = newline + 1;
    newline = buffer.indexOf(10, at);
    if (newline < 0) throw new Error('malformed read script reply');
    const count = framedNumber(buffer, at, newline);
    at = newline + 1;
    const fields = new Array<string>(count);
    if (valid) {
      for (let i = 0; i < count; i++) {
        newline = buffer.indexOf(10, at);
        if (newline < 0) throw new Error('malformed read script reply');
        const start = newline + 1;
        const end = start + framedNumber(buffer, at, newline);
        // Field names repeat from entry to entry: the previous entry's string when the bytes match.
        const name = (i & 1) === 0 ? names[i] : undefined;
        if (name !== undefined && sameAscii(buffer, start, end, name)) {
          fields[i] = name;
        } else {
          fields[i] = buffer.toString('utf8', start, end);
          if ((i & 1) === 0 && i < MAX_NAMES && end - start <= MAX_NAME_BYTES) names[i] = fields[i];
        }
        at = end;
      }
      entries.push([id, fields]);
      continue;
    }
    let bad: number | undefined;
    const starts = new Array<number>(count);
    const sizes = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      newline = buffer.indexOf(10, at);
      if (newline < 0) throw new Error('malformed read script reply');
      const size = framedNumber(buffer, at, newline);
      at = newline + 1;
      starts[i] = at;
      sizes[i] = size;
      const bytes = buffer.subarray(at, at + size);
      if (bad === undefined && !isUtf8(bytes)) bad = i;
      fields[i] = bytes.toString('utf8');
      at += size;
    }
    if (bad === undefined) {
      entries.push([id, fields]);
    } else {
      // Copies: the reply buffer is not kept alive for one bad entry's sake.
      const raw = starts.map((start, i) => Buffer.from(buffer.subarray(start, start + sizes[i])));
      entries.push([id, fields, { fields: raw, badField: fields[bad] }]);
    }
  }
  if (at !== length) throw new Error('malformed read script reply');
  return { entries, gap };
}
