import { randomFillSync } from 'node:crypto';
import { processOrigin } from '../common/origin.js';

/**
 * Ids per random block: the last two hex digits count through it. Small
 * enough that a new block is drawn while V8 still gathers type feedback:
 * a branch first taken after the posting path was optimized would
 * deoptimize it.
 */
export const ID_BLOCK = 256;
/**
 * Blocks whose random bytes one `randomFillSync` draws (1 KiB): the call,
 * not the bytes, is what costs (it was about 2% of a local `post` at one
 * call per block).
 */
const POOL_BLOCKS = 64;
/** `'00'` to `'ff'`: the counting digits of a block, made once per process. */
export const ID_DIGITS: readonly string[] = Array.from({ length: ID_BLOCK }, (_, i) =>
  i.toString(16).padStart(2, '0'),
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
 * 5-8% of a warm `post`. An id is now the block's prefix plus a counting
 * suffix: one small string (a rope of the two; a retained id keeps at most
 * its block's 34-character prefix alive).
 */
export class UuidSource {
  /** Random bytes for {@link POOL_BLOCKS} blocks, drawn at once: one `randomFillSync` per 16,384 ids. */
  private readonly random = Buffer.allocUnsafeSlow(16 * POOL_BLOCKS);
  /** Where the next block's 16 bytes start in {@link random}; its length: all used. */
  private at = 16 * POOL_BLOCKS;
  /**
   * The current block's first 34 characters, and the index in
   * {@link ID_DIGITS} of its next id ({@link ID_BLOCK}: used up). Public
   * for `EventBus.postLocal`, which takes an id inline, as {@link uuid}
   * does: one function fewer for V8 to compile on a cold app's posting path.
   */
  prefix = '';
  next = ID_BLOCK;

  /** A new id, e.g. `9b2f3c1e-8d4a-4f6b-a1c2-3d4e5f607182`. */
  uuid(): string {
    if (this.next === ID_BLOCK) this.renew();
    return this.prefix + ID_DIGITS[this.next++];
  }

  /** A new block: 16 random bytes, the version and variant bits set, as hex with the dashes. */
  renew(): void {
    const bytes = this.random;
    if (this.at === bytes.length) {
      randomFillSync(bytes);
      this.at = 0;
    }
    const at = this.at;
    this.at += 16;
    bytes[at + 6] = (bytes[at + 6] & 0x0f) | 0x40;
    bytes[at + 8] = (bytes[at + 8] & 0x3f) | 0x80;
    const hex = bytes.toString('hex', at, at + 15);
    this.prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 30)}`;
    this.next = 0;
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
