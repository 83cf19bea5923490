import { randomFillSync } from 'node:crypto';
import { processOrigin } from '../common/origin.js';

/**
 * Flat ids per random block (see {@link UuidSource.flatUuid}): the last two
 * hex digits count through it (`00` to `3f`). Small enough that a new block
 * is drawn while V8 still gathers type feedback (a branch first taken after
 * the posting path was optimized would deoptimize it), and that an id kept
 * alone keeps little alive (see {@link UuidSource}: its block's text,
 * 2.3 KB).
 */
export const ID_BLOCK = 64;
/**
 * Rope ids per random block (see {@link UuidSource.uuid}): the last two hex
 * digits count through it, `00` to `ff`.
 */
export const ROPE_BLOCK = 256;
/** `'00'` to `'ff'`: the counting digits of a rope block, made once per process. */
export const ID_DIGITS: readonly string[] = Array.from({ length: ROPE_BLOCK }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);
/** Characters of an id. */
export const ID_LENGTH = 36;
/** Characters of a block's text: its {@link ID_BLOCK} ids back to back. */
export const ID_TEXT_LENGTH = ID_LENGTH * ID_BLOCK;
/**
 * Blocks whose random bytes one `randomFillSync` draws (1 KiB): the call,
 * not the bytes, is what costs (it was about 2% of a local `post` at one
 * call per block).
 */
const POOL_BLOCKS = 64;
/** `'0123456789abcdef'` as character codes. */
const HEX_CODES = Buffer.from('0123456789abcdef', 'latin1');
/** Where {@link ID_BLOCK}'s counting digits sit in a block's text, as 16-bit units (an id is 36 characters, its digits the last two). */
const DIGITS_AT = (ID_LENGTH - 2) / 2;
/** The counting digits `00` to `3f` as 16-bit units of two character codes, in this machine's byte order. */
const DIGIT_PAIRS = new Uint16Array(ID_BLOCK);
Buffer.from(DIGIT_PAIRS.buffer).write(
  Array.from({ length: ID_BLOCK }, (_, i) => i.toString(16).padStart(2, '0')).join(''),
  'latin1',
);

/**
 * Event ids for the hot path: strings in the layout of a version-4 UUID
 * (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`), unique per event. Each
 * block of {@link ID_BLOCK} ids shares 114 fresh random bits (from
 * `randomFillSync`, the source `crypto.randomUUID()` uses) in its first 34
 * characters, and the last two hex digits count through the block: ids
 * never repeat within a process, and two blocks (of any processes) collide
 * with odds of about 2^-114. Consecutive ids of one process share their
 * first 34 characters; nothing else about them is predictable.
 *
 * Why not fully random ids: formatting 122 random bits into 36 characters
 * per event was the largest single cost of a post on a cold app (the
 * interpreter runs it until V8 optimizes it, and V8 then compiles the
 * 36-argument `String.fromCharCode` again inside every posting path), and
 * 5-8% of a warm `post`.
 *
 * Two kinds, from separate blocks (so they never collide either):
 * {@link uuid}, the block's prefix and the digits joined, for events that
 * stay in the process (`postLocal`, the local transport); and
 * {@link flatUuid}, a slice of the block's flat text, for envelopes a
 * transport writes. V8 makes a joined string of 13 characters or more a
 * rope (a cons of its two parts), and most consumers flatten a rope first,
 * in the runtime: the redis and pg transports test each id with a regular
 * expression before writing it, which for a rope leaves the compiled
 * matcher for the runtime and copies the id into a new flat string (issue
 * 24, callgrind of bench/redis-before-after.ts `herald after`: about 1,260
 * instructions and 48 bytes per event, of 52.6 k). A slice of a flat text
 * is flat to them (V8 reads a sliced string in place) and is as small as
 * the rope (a 20-byte object), but the block's text costs 36 bytes per id
 * (2.3 KB per 64) and about 110 instructions per id to make, which a local
 * post, whose id nothing flattens, only pays for (bench/bus-before-after.ts,
 * local, interleaved: after/before 1.01-1.07x with flat ids everywhere).
 * And an id kept alone keeps its block's text alive: 2.3 KB.
 */
export class UuidSource {
  /** Random bytes for {@link POOL_BLOCKS} blocks, drawn at once: one `randomFillSync` per 64 blocks. */
  private readonly random = Buffer.allocUnsafeSlow(16 * POOL_BLOCKS);
  /** Where the next block's 16 bytes start in {@link random}; its length: all used. */
  private at = 16 * POOL_BLOCKS;
  /** Where a block's text is written before it becomes a string (reused: the string is a copy). */
  private readonly scratch = Buffer.allocUnsafeSlow(ID_TEXT_LENGTH);
  /** {@link scratch} as 16-bit units: one store writes an id's two counting digits. */
  private readonly scratchPairs = new Uint16Array(this.scratch.buffer, 0, ID_TEXT_LENGTH / 2);
  /** A block's first id, repeated over {@link scratch}: the dashes and its digits `00` written once here. */
  private readonly first = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');
  /**
   * The current rope block's first 34 characters, and the index in
   * {@link ID_DIGITS} of its next id ({@link ROPE_BLOCK}: used up). Public
   * for `EventBus.post` and `postLocal`, which take an id inline, as
   * {@link uuid} does: one function fewer for V8 to compile on a cold app's
   * posting path.
   */
  prefix = '';
  next = ROPE_BLOCK;
  /**
   * The current flat block's text (its ids back to back), and where in it
   * the next id starts ({@link ID_TEXT_LENGTH}: used up). Public for
   * `EventBus.post`, as {@link prefix}.
   */
  text = '';
  offset = ID_TEXT_LENGTH;

  /** A new id as a rope (for what stays in the process), e.g. `9b2f3c1e-8d4a-4f6b-a1c2-3d4e5f607182`. */
  uuid(): string {
    if (this.next === ROPE_BLOCK) this.renewPrefix();
    return this.prefix + ID_DIGITS[this.next++];
  }

  /** A new id as a flat string (for what a transport writes), e.g. `9b2f3c1e-8d4a-4f6b-a1c2-3d4e5f607112`. */
  flatUuid(): string {
    if (this.offset === ID_TEXT_LENGTH) this.renew();
    const at = this.offset;
    this.offset = at + ID_LENGTH;
    return this.text.slice(at, at + ID_LENGTH);
  }

  /** 16 random bytes of the pool, the version and variant bits set: @returns where they start. */
  private draw(): number {
    const bytes = this.random;
    if (this.at === bytes.length) {
      randomFillSync(bytes);
      this.at = 0;
    }
    const at = this.at;
    this.at += 16;
    bytes[at + 6] = (bytes[at + 6] & 0x0f) | 0x40;
    bytes[at + 8] = (bytes[at + 8] & 0x3f) | 0x80;
    return at;
  }

  /** A new rope block: its prefix, 15 random bytes as hex with the dashes. */
  renewPrefix(): void {
    const at = this.draw();
    const hex = this.random.toString('hex', at, at + 15);
    this.prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 30)}`;
    this.next = 0;
  }

  /**
   * A new flat block: 15 random bytes as hex with the dashes, its text that
   * id {@link ID_BLOCK} times, each with its counting digits. About 2,000
   * instructions per block, all in one function and three calls (fill, the
   * digits, toString): writing each piece through strings
   * (`toString('hex')`, five slices, a template) and copying with
   * `copyWithin` was 13,600 (callgrind, 212 per local post).
   */
  renew(): void {
    const at = this.draw();
    const bytes = this.random;
    // 8-4-4-4-10 hex digits from 15 bytes, stepping over the dashes.
    const first = this.first;
    for (let i = 0, to = 0; i < 15; i++, to += 2) {
      if (to === 8 || to === 13 || to === 18 || to === 23) to++;
      const byte = bytes[at + i];
      first[to] = HEX_CODES[byte >> 4];
      first[to + 1] = HEX_CODES[byte & 15];
    }
    const scratch = this.scratch;
    scratch.fill(first);
    const pairs = this.scratchPairs;
    for (let i = 1; i < ID_BLOCK; i++) pairs[i * (ID_LENGTH / 2) + DIGITS_AT] = DIGIT_PAIRS[i];
    this.text = scratch.toString('latin1', 0, ID_TEXT_LENGTH);
    this.offset = 0;
  }
}

/** Buses made in this process so far: each takes the next number for its origin. */
let buses = 0;

/**
 * A new bus's origin: {@link processOrigin} (host, pid, per-process instance
 * id) and the bus's number in this process, e.g. `web-1/4242/9b2f3c1e/1`.
 * Unique per bus, so a bus recognises its own posts by comparing one string.
 */
export function busOrigin(): string {
  return `${processOrigin()}/${++buses}`;
}
