import { randomFillSync } from 'node:crypto';

/** Ids made per refill: one `randomFillSync` and one hex conversion for this many. */
const BATCH = 256;
const DASH = 0x2d;
const FOUR = 0x34;
/** A hex digit's character code -> the variant digit (8, 9, a or b) with its two low bits. */
const VARIANT = new Uint8Array(128);
for (let digit = 0; digit < 16; digit++) {
  VARIANT[digit.toString(16).charCodeAt(0)] = '89ab'.charCodeAt(digit & 3);
}

/**
 * Random (version 4) UUIDs, as `crypto.randomUUID()` makes them, for the
 * event ids of the hot path. `randomUUID()` builds each id by concatenating
 * some 20 strings (about 430 bytes of garbage per id: most of the bus's
 * garbage per event). Here the random bytes of {@link BATCH} ids are drawn
 * and turned into hex text at once (both in C++), and each id is one flat
 * string built from its 32 hex digits and 4 dashes: one allocation, nothing
 * shared with the buffers (a retained id keeps no batch alive).
 */
export class UuidSource {
  private readonly random = Buffer.allocUnsafeSlow(16 * BATCH);
  private readonly hex = Buffer.allocUnsafeSlow(32 * BATCH);
  private next = BATCH;

  /** A new random UUID, e.g. `9b2f3c1e-8d4a-4f6b-a1c2-3d4e5f607182`. */
  uuid(): string {
    if (this.next === BATCH) this.refill();
    const h = this.hex;
    const o = this.next++ * 32;
    // The version digit is '4'; the variant digit one of 8, 9, a, b (its
    // random digit's two low bits): set here, so a refill has no loop.
    // prettier-ignore
    return String.fromCharCode(
      h[o], h[o + 1], h[o + 2], h[o + 3], h[o + 4], h[o + 5], h[o + 6], h[o + 7], DASH,
      h[o + 8], h[o + 9], h[o + 10], h[o + 11], DASH,
      FOUR, h[o + 13], h[o + 14], h[o + 15], DASH,
      VARIANT[h[o + 16]], h[o + 17], h[o + 18], h[o + 19], DASH,
      h[o + 20], h[o + 21], h[o + 22], h[o + 23], h[o + 24], h[o + 25],
      h[o + 26], h[o + 27], h[o + 28], h[o + 29], h[o + 30], h[o + 31],
    );
  }

  private refill(): void {
    randomFillSync(this.random);
    this.hex.write(this.random.toString('hex'), 'latin1');
    this.next = 0;
  }
}
