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

/**
 * Buffer methods called through these: `buffer.indexOf` / `buffer.toString`
 * stay generic property loads in optimized code (Node 20: TurboFan does not
 * resolve them on Buffer.prototype; `--print-opt-code` shows a
 * LoadICTrampoline call before each, about 6 per entry in FramedBatch.next
 * by callgrind); a constant function called with `.call` is a direct call.
 */
const bufferToString: (
  this: Buffer,
  encoding: BufferEncoding,
  start: number,
  end: number,
) => string = Buffer.prototype.toString;

/** A slice of a Buffer as a string, by Node's binding for one encoding. */
type Slice = (this: Buffer, start: number, end: number) => string;

/**
 * `buffer.toString(encoding, start, end)` as Buffer#toString ends, when its
 * bounds are known to be within the buffer (FramedBatch checks them against
 * the reply's frames, and a binding checks them again): Node's
 * `latin1Slice`/`utf8Slice` bindings (on Buffer.prototype since Node 0.x),
 * called directly. Buffer#toString's own steps (argument checks, the
 * encoding's lookup, a call through its ops) cost about 1,900 instructions a
 * call by callgrind (a plain node script: 6,363 instructions for an id and
 * a value against 2,490 with the bindings), two calls per entry read.
 * Buffer#toString stays the fallback where a binding is missing.
 */
function sliceOf(encoding: 'latin1' | 'utf8'): Slice {
  const binding = (Buffer.prototype as unknown as Record<string, Slice | undefined>)[
    `${encoding}Slice`
  ];
  if (typeof binding === 'function') return binding;
  return function slice(this: Buffer, start: number, end: number): string {
    return bufferToString.call(this, encoding, start, end);
  };
}
const latin1Slice = sliceOf('latin1');
const utf8Slice = sliceOf('utf8');

/**
 * The first newline at or after `at`, or -1: a JS loop, not `buffer.indexOf`,
 * which is a call into C++ (hundreds of instructions, callgrind) to find a
 * byte a few places on (the lines it looks through are an id or a size).
 */
function lineEnd(buffer: Buffer, at: number): number {
  for (const length = buffer.length; at < length; at++) if (buffer[at] === 10) return at;
  return -1;
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
 * The entries of one read, each made (its id, field array and strings) only
 * when it is taken, just before its dispatch: what a read keeps until then is
 * its reply's bytes (a Buffer, outside the JS heap).
 *
 * Why: a batch parsed whole up front is 1000 `[id, fields]` arrays, their
 * field arrays and strings, made in one burst and all alive while the batch
 * is dispatched. Taken one at a time, what a scavenge finds alive is the
 * few entries whose handlers have not settled. This was written while
 * looking for redis's bad GC mode, and it was not its cause: a probe found
 * these arrays never made in the old generation (the cause was
 * allocation-site pretenuring of per-event literals, see EnvelopeRecord).
 * Kept because it paid a little in time (bench/redis-before-after.ts,
 * interleaved, 8 rounds x 30k events: herald 0.90x, parts 0.85x, ranges
 * crossing 1) and lets go of each entry once dispatched.
 */
export interface EntryBatch {
  /** How many entries the read returned. */
  readonly size: number;
  /** The newest id read (the last entry's), undefined if none. */
  readonly lastId: string | undefined;
  /** The next entry, undefined after the last. Throws on a malformed reply. */
  next(): RawEntry | undefined;
}

/** A read that returned nothing. */
export const EMPTY_BATCH: EntryBatch = { size: 0, lastId: undefined, next: () => undefined };

/** A plain XREADGROUP's reply (ioredis's arrays of Buffers), each entry converted when taken. */
export class BufferBatch implements EntryBatch {
  private at = 0;
  readonly size: number;
  readonly lastId: string | undefined;

  constructor(private entries: readonly BufferEntry[] | undefined) {
    this.size = entries?.length ?? 0;
    this.lastId = this.size > 0 ? String(entries![this.size - 1][0]) : undefined;
  }

  next(): RawEntry | undefined {
    const entries = this.entries;
    if (entries === undefined || this.at >= entries.length) {
      this.entries = undefined;
      return undefined;
    }
    const entry = entries[this.at];
    // The reply array lets go of each entry once taken: only the unsettled ones stay alive.
    (entries as (BufferEntry | undefined)[])[this.at++] = undefined;
    return entryFromBuffers(entry);
  }
}

function malformed(): Error {
  return new Error('malformed read script reply');
}

/**
 * The read script's reply ({@link READ_BATCH} in redis.scripts.ts), parsed
 * one entry at a time: `=<count> <last id>` first, then the gap line, if
 * any, then the entries (a reply of no entries has no count line). The
 * whole reply is checked for UTF-8 once: every field is framed by ASCII
 * (its size line before, the next line after), so a reply that is valid
 * UTF-8 has every field valid, and only a reply that is not is checked
 * field by field (to dead-letter the bad entries with their bytes).
 */
export class FramedBatch implements EntryBatch {
  readonly size: number;
  readonly lastId: string | undefined;
  readonly gap: TrimmedGap | undefined;
  private buffer: Buffer | undefined;
  private at = 0;
  private taken = 0;
  private readonly valid: boolean;
  /** Field names reused from entry to entry (see {@link MAX_NAMES}). */
  private readonly names: string[] = [];

  constructor(buffer: Buffer) {
    let at = 0;
    // The read script always sends the count line before its entries (a
    // reply comes from the script of this very source, by its SHA); a reply
    // without one holds at most a gap line.
    let size = 0;
    let lastId: string | undefined;
    if (buffer.length > 0 && buffer[0] === 61 /* = */) {
      const newline = buffer.indexOf(10);
      const space = buffer.indexOf(32);
      if (newline < 0 || space < 0 || space > newline) throw malformed();
      size = framedNumber(buffer, 1, space);
      lastId = buffer.toString('latin1', space + 1, newline);
      at = newline + 1;
    }
    if (at < buffer.length && buffer[at] === 35 /* # */) {
      const newline = buffer.indexOf(10, at);
      if (newline < 0) throw malformed();
      this.gap = parseGap(buffer.toString('latin1', at, newline));
      at = newline + 1;
    }
    this.buffer = buffer;
    this.at = at;
    this.valid = isUtf8(buffer);
    if (lastId === undefined && at < buffer.length) throw malformed();
    this.size = size;
    this.lastId = lastId;
  }

  next(): RawEntry | undefined {
    const buffer = this.buffer;
    if (buffer === undefined) return undefined;
    const length = buffer.length;
    let at = this.at;
    if (at >= length) {
      this.buffer = undefined;
      if (at !== length || this.taken !== this.size) throw malformed();
      return undefined;
    }
    let newline = lineEnd(buffer, at);
    if (newline < 0) throw malformed();
    const id = latin1Slice.call(buffer, at, newline);
    at = newline + 1;
    newline = lineEnd(buffer, at);
    if (newline < 0) throw malformed();
    const count = framedNumber(buffer, at, newline);
    at = newline + 1;
    const fields = new Array<string>(count);
    let entry: RawEntry;
    if (this.valid) {
      const names = this.names;
      for (let i = 0; i < count; i++) {
        newline = lineEnd(buffer, at);
        if (newline < 0) throw malformed();
        const start = newline + 1;
        const end = start + framedNumber(buffer, at, newline);
        // A frame past the reply's end: malformed (the binding would throw its own RangeError).
        if (end > length) throw malformed();
        // Field names repeat from entry to entry: the previous entry's string when the bytes match.
        const name = (i & 1) === 0 ? names[i] : undefined;
        if (name !== undefined && sameAscii(buffer, start, end, name)) {
          fields[i] = name;
        } else {
          fields[i] = utf8Slice.call(buffer, start, end);
          if ((i & 1) === 0 && i < MAX_NAMES && end - start <= MAX_NAME_BYTES) names[i] = fields[i];
        }
        at = end;
      }
      entry = [id, fields];
    } else {
      let bad: number | undefined;
      const starts = new Array<number>(count);
      const sizes = new Array<number>(count);
      for (let i = 0; i < count; i++) {
        newline = lineEnd(buffer, at);
        if (newline < 0) throw malformed();
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
        entry = [id, fields];
      } else {
        // Copies: the reply buffer is not kept alive for one bad entry's sake.
        const raw = starts.map((start, i) => Buffer.from(buffer.subarray(start, start + sizes[i])));
        entry = [id, fields, { fields: raw, badField: fields[bad] }];
      }
    }
    if (at > length) throw malformed();
    this.at = at;
    this.taken++;
    return entry;
  }
}

/**
 * Parses the read script's reply ({@link READ_BATCH} in redis.scripts.ts)
 * whole: every entry, and the gap, if any (see {@link FramedBatch}).
 */
export function parseFramedEntries(buffer: Buffer): FramedRead {
  const batch = new FramedBatch(buffer);
  const entries: RawEntry[] = [];
  for (let entry = batch.next(); entry !== undefined; entry = batch.next()) entries.push(entry);
  return { entries, gap: batch.gap };
}
