import { FRAME_HEADER_BYTES } from './ipc.constants.js';
import { IpcProtocolError } from './ipc.errors.js';
import type { StringCache } from './ipc.string-cache.js';

/** Node's Buffer methods under `toString`/`write`, without their argument checks. */
interface Utf8Buffer extends Buffer {
  utf8Slice(start: number, end: number): string;
  utf8Write(value: string, offset: number): number;
}

const EMPTY = Buffer.alloc(0);

/** First allocation on the first write (a client idle after its HELLO holds little: 10k of them fit). */
const INITIAL_BYTES = 1024;
/** Kept after `take()` up to this size, so a busy writer does not reallocate per tick. */
const KEEP_BYTES = 1024 * 1024;

/** Where a writer's bytes go: a socket (a structural type, so tests can pass a stand-in). */
export interface ByteSink {
  write(chunk: Buffer): boolean;
  /** Bytes the sink still holds (0: everything given to it reached the kernel). */
  readonly writableLength: number;
}

/**
 * Builds frames into one growable buffer, so a tick's frames for one socket
 * leave in a single write. `take()` hands the bytes out (the buffer itself
 * when mostly full, else a copy); a socket holds what it was given until written.
 */
export class FrameWriter {
  private buf = EMPTY;
  /** Size of the buffer last given away by take(): the next one starts there. */
  private hint = INITIAL_BYTES;
  /** Bytes written so far. */
  length = 0;
  private frameStart = -1;

  private ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buf.length) return;
    let size = Math.max(this.hint, this.buf.length * 2);
    while (size < needed) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  /** Opens a frame of `type`; `end()` writes its length. */
  begin(type: number): void {
    this.ensure(FRAME_HEADER_BYTES);
    this.frameStart = this.length;
    this.buf[this.length + 4] = type;
    this.length += FRAME_HEADER_BYTES;
  }

  /** Closes the open frame; returns its total size in bytes (header included). */
  end(): number {
    const size = this.length - this.frameStart;
    this.buf.writeUInt32BE(size - 4, this.frameStart);
    this.frameStart = -1;
    return size;
  }

  /** Drops everything written since `mark` (a frame found too big). */
  truncate(mark: number): void {
    this.length = mark;
    this.frameStart = -1;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buf[this.length++] = value;
  }

  u32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(value, this.length);
    this.length += 4;
  }

  i32(value: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(value, this.length);
    this.length += 4;
  }

  /** A 48-bit unsigned integer (sequence numbers). */
  u48(value: number): void {
    this.ensure(6);
    this.buf.writeUIntBE(value, this.length, 6);
    this.length += 6;
  }

  /** A UTF-8 string with a u32 byte length. */
  str(value: string): void {
    this.ensure(4 + value.length * 3);
    const written = (this.buf as Utf8Buffer).utf8Write(value, this.length + 4);
    this.buf.writeUInt32BE(written, this.length);
    this.length += 4 + written;
  }

  /** Raw bytes (a body forwarded as is). */
  bytes(source: Buffer, start = 0, end = source.length): void {
    this.ensure(end - start);
    // A whole buffer through TypedArray#set (a memcpy, no view made); Buffer#copy calls into C++.
    if (start === 0 && end === source.length) this.buf.set(source, this.length);
    else source.copy(this.buf, this.length, start, end);
    this.length += end - start;
  }

  /**
   * Writes what was written to `sink` and starts over. When the sink took
   * the bytes at once (a socket whose write reached the kernel within the
   * call: nothing left in `writableLength`), the buffer is written over
   * again: no allocation per write. Else it is given away with the bytes.
   */
  writeTo(sink: ByteSink): void {
    const length = this.length;
    if (length === 0) return;
    this.length = 0;
    const queuedBefore = sink.writableLength;
    sink.write(this.buf.subarray(0, length));
    if (queuedBefore === 0 && sink.writableLength === 0 && this.buf.length <= KEEP_BYTES) return;
    this.hint = Math.min(KEEP_BYTES, Math.max(INITIAL_BYTES, this.buf.length));
    this.buf = EMPTY;
  }

  /**
   * Hands out what was written and starts over: a mostly full buffer is given
   * away as it is (no copy; the next write allocates anew), a mostly empty
   * one is copied out and kept.
   */
  take(): Buffer {
    const length = this.length;
    this.length = 0;
    if (length * 2 >= this.buf.length) {
      const out = this.buf.subarray(0, length);
      this.hint = Math.min(KEEP_BYTES, Math.max(INITIAL_BYTES, this.buf.length));
      this.buf = EMPTY;
      return out;
    }
    const out = Buffer.allocUnsafe(length);
    this.buf.copy(out, 0, 0, length);
    if (this.buf.length > KEEP_BYTES) this.buf = EMPTY;
    return out;
  }
}

/** Bytes of one slab: copies of ranges up to an eighth of it share slabs. */
const SLAB_BYTES = 16 * 1024;

/**
 * Copies byte ranges (event bodies the broker keeps queued) into shared
 * slabs: one allocation per slab and one view per copy, where
 * `Buffer.from(buf.subarray(...))` makes two views and goes through the
 * generic array-like path. A slab lives while any copy in it is referenced,
 * as Node's own 8 KB pool does.
 */
export class ByteSlab {
  private slab = EMPTY;
  private used = 0;

  copy(source: Buffer, start: number, end: number): Buffer {
    const length = end - start;
    if (length > SLAB_BYTES >>> 3) {
      const out = Buffer.allocUnsafeSlow(length);
      source.copy(out, 0, start, end);
      return out;
    }
    if (this.used + length > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    const at = this.used;
    source.copy(this.slab, at, start, end);
    // 8-byte aligned, as Node's pool keeps its slices.
    this.used = (at + length + 7) & ~7;
    return this.slab.subarray(at, at + length);
  }
}

/**
 * Splits a byte stream into frames without a per-frame object: after
 * `next()` returns true, `type`, `start` and `end` locate the current
 * frame's body in `buf`; `consume()` moves past it. A frame longer than
 * `maxFrameBytes` throws {@link IpcProtocolError} before it is buffered whole.
 * A frame split across reads is put together alone (its tail copied, not the
 * whole next read): the rest of that read is read where it lies.
 */
export class FrameReader {
  buf: Buffer = EMPTY;
  private offset = 0;
  /** The rest of a read after the split frame assembled in `buf`. */
  private later: Buffer | undefined;
  type = 0;
  start = 0;
  end = 0;

  constructor(public maxFrameBytes: number) {}

  push(chunk: Buffer): void {
    if (this.later) {
      // Pushed before the assembled frame was consumed (not the readers' use): keep the order.
      this.buf = Buffer.concat([this.buf.subarray(this.offset), this.later]);
      this.offset = 0;
      this.later = undefined;
    }
    if (this.offset >= this.buf.length) {
      this.buf = chunk;
      this.offset = 0;
      return;
    }
    // Every whole frame was consumed: what is left is the head of one frame.
    const tail = this.buf.subarray(this.offset);
    this.offset = 0;
    const total = tail.length + chunk.length;
    if (total >= 4) {
      const size = this.sizeAt(tail, chunk);
      const need = 4 + size;
      if (size >= 1 && size <= this.maxFrameBytes && tail.length < need && total > need) {
        const frame = Buffer.allocUnsafe(need);
        tail.copy(frame, 0);
        chunk.copy(frame, tail.length, 0, need - tail.length);
        this.buf = frame;
        this.later = chunk.subarray(need - tail.length);
        return;
      }
    }
    // The frame is still incomplete (or bad: next() says so), or it ends with this read.
    this.buf = Buffer.concat([tail, chunk], total);
  }

  /** The length field of the frame whose first bytes are `tail`, then `chunk`. */
  private sizeAt(tail: Buffer, chunk: Buffer): number {
    if (tail.length >= 4) return tail.readUInt32BE(0);
    let size = 0;
    for (let i = 0; i < 4; i++)
      size = size * 256 + (i < tail.length ? tail[i] : chunk[i - tail.length]);
    return size;
  }

  /** True when a whole frame is available; it stays current until `consume()`. */
  next(): boolean {
    const available = this.buf.length - this.offset;
    if (available < 4) return false;
    const size = this.buf.readUInt32BE(this.offset);
    if (size < 1) throw new IpcProtocolError('frame of length 0');
    if (size > this.maxFrameBytes) {
      throw new IpcProtocolError(
        `frame of ${size} bytes exceeds the limit of ${this.maxFrameBytes} bytes`,
      );
    }
    if (available < 4 + size) return false;
    this.type = this.buf[this.offset + 4];
    this.start = this.offset + FRAME_HEADER_BYTES;
    this.end = this.offset + 4 + size;
    return true;
  }

  consume(): void {
    this.offset = this.end;
    if (this.offset >= this.buf.length) {
      this.buf = this.later ?? EMPTY;
      this.later = undefined;
      this.offset = 0;
    }
  }

  /** Forgets everything buffered (the connection is gone). */
  reset(): void {
    this.buf = EMPTY;
    this.later = undefined;
    this.offset = 0;
  }

  /** Bytes received but not yet consumed. */
  get buffered(): number {
    return this.buf.length - this.offset + (this.later?.length ?? 0);
  }
}

/** Reads fields of one frame body, checking every length against the frame's end. */
export class BodyReader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  /** Where the bytes of the last string read by `str()` start (they end at `pos`). */
  strStart = 0;

  reset(buf: Buffer, start: number, end: number): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    return this;
  }

  private need(bytes: number, what: string): void {
    if (this.pos + bytes > this.end) throw new IpcProtocolError(`frame ends inside ${what}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  i32(what: string): number {
    this.need(4, what);
    const value = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  u48(what: string): number {
    this.need(6, what);
    const value = this.buf.readUIntBE(this.pos, 6);
    this.pos += 6;
    return value;
  }

  str(what: string): string {
    const length = this.u32(what);
    this.need(length, what);
    this.strStart = this.pos;
    // utf8Slice: toString('utf8', a, b) without its argument checks (the bounds were checked above).
    const value = (this.buf as Utf8Buffer).utf8Slice(this.pos, this.pos + length);
    this.pos += length;
    return value;
  }

  /** A string likely to repeat from frame to frame (a name), decoded through `cache`. */
  cachedStr(what: string, cache: StringCache): string {
    const length = this.u32(what);
    this.need(length, what);
    const value = cache.decode(this.buf, this.pos, this.pos + length);
    this.pos += length;
    return value;
  }

  /** Skips a string, returning its byte length. */
  skipStr(what: string): number {
    const length = this.u32(what);
    this.need(length, what);
    this.pos += length;
    return length;
  }

  done(what: string): void {
    if (this.pos !== this.end)
      throw new IpcProtocolError(`${this.end - this.pos} unexpected byte(s) after ${what}`);
  }
}
