import { randomFillSync } from 'node:crypto';
import { processOrigin } from '../common/origin.js';

/**
 * Ids per random block: the last two hex digits count through it (`00` to
 * `3f`). Small enough that a new block is drawn while V8 still gathers type
 * feedback (a branch first taken after the posting path was optimized would
 * deoptimize it), and that an id kept alone keeps little alive (see
 * {@link UuidSource}: its block's text, 2.3 KB).
 */
export const ID_BLOCK = 64;
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
/** `'0123456789abcdef'` as character codes, for a block's counting digits. */
const HEX_CODES = Buffer.from('0123456789abcdef', 'latin1');

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
 * Why a slice of the block's text, not the prefix and the digits joined:
 * V8 makes a joined string of 13 characters or more a rope (a cons of its
 * two parts), and most consumers flatten a rope first, in the runtime: the
 * redis and pg transports test each id with a regular expression before
 * writing it, which for a rope leaves the compiled matcher for the runtime
 * and copies the id into a new flat string (issue 24, callgrind of
 * bench/redis-before-after.ts `herald after`: about 1,260 instructions and
 * 48 bytes per event, of 52.6 k). A slice of a flat text is flat to them
 * (V8 reads a sliced string in place), costs no more to make than the rope
 * (a 20-byte object either way), and the block's text (2.3 KB per 64 ids,
 * 36 bytes per id) is made once per block. The cost: an id kept alone keeps
 * its block's text alive, 2.3 KB (at most {@link ID_TEXT_LENGTH}
 * characters per id kept).
 */
export class UuidSource {
  /** Random bytes for {@link POOL_BLOCKS} blocks, drawn at once: one `randomFillSync` per 4,096 ids. */
  private readonly random = Buffer.allocUnsafeSlow(16 * POOL_BLOCKS);
  /** Where the next block's 16 bytes start in {@link random}; its length: all used. */
  private at = 16 * POOL_BLOCKS;
  /** Where a block's text is written before it becomes a string (reused: the string is a copy). */
  private readonly scratch = Buffer.allocUnsafeSlow(ID_TEXT_LENGTH);
  /**
   * The current block's text (its ids back to back), and where in it the
   * next id starts ({@link ID_TEXT_LENGTH}: used up). Public for
   * `EventBus.post` and `postLocal`, which take an id inline, as
   * {@link uuid} does: one function fewer for V8 to compile on a cold
   * app's posting path.
   */
  text = '';
  offset = ID_TEXT_LENGTH;

  /** A new id, e.g. `9b2f3c1e-8d4a-4f6b-a1c2-3d4e5f607112`. */
  uuid(): string {
    if (this.offset === ID_TEXT_LENGTH) this.renew();
    const at = this.offset;
    this.offset = at + ID_LENGTH;
    return this.text.slice(at, at + ID_LENGTH);
  }

  /** A new block: 16 random bytes, the version and variant bits set, as hex with the dashes, 64 times with the counting digits. */
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
    const scratch = this.scratch;
    scratch.write(
      `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 30)}00`,
      0,
      'latin1',
    );
    // The first id copied over the block, doubling (6 copies for 64 ids),
    // then each id's counting digits.
    for (let filled = ID_LENGTH; filled < ID_TEXT_LENGTH; filled *= 2) {
      scratch.copyWithin(filled, 0, Math.min(filled, ID_TEXT_LENGTH - filled));
    }
    for (let i = 1, digits = ID_LENGTH - 2; i < ID_BLOCK; i++) {
      digits += ID_LENGTH;
      scratch[digits] = HEX_CODES[i >> 4];
      scratch[digits + 1] = HEX_CODES[i & 15];
    }
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
