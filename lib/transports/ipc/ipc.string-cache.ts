/** Node's Buffer method under `toString('utf8')`, without its argument checks. */
interface Utf8Slicer extends Uint8Array {
  utf8Slice(start: number, end: number): string;
}

/** Strings longer than this (in UTF-8 bytes) are decoded every time, never kept. */
const MAX_CACHED_BYTES = 64;

/**
 * Decodes short UTF-8 strings that repeat from event to event (source,
 * event name, origin, the occurred-at second) to the same string as last
 * time: the bytes are compared instead of decoded, so a busy worker makes
 * no new string per field per event (less garbage), and the bus's lookups
 * by these names find their hash already computed. Direct-mapped by a hash
 * of the bytes: a slot holds the last string decoded into it. `slots` is a
 * power of two.
 */
export class StringCache {
  private readonly mask: number;
  /** Allocated at the first string (a client that receives nothing holds nothing). */
  private bytes?: Uint8Array;
  private lengths = new Int32Array(0);
  private strings: string[] = [];

  constructor(private readonly slots = 32) {
    this.mask = slots - 1;
  }

  /** The UTF-8 string in `buf[start, end)`. */
  decode(buf: Uint8Array, start: number, end: number): string {
    const length = end - start;
    if (length > MAX_CACHED_BYTES) return (buf as Utf8Slicer).utf8Slice(start, end);
    if (!this.bytes) {
      this.bytes = new Uint8Array(this.slots * MAX_CACHED_BYTES);
      this.lengths = new Int32Array(this.slots).fill(-1);
      this.strings = new Array<string>(this.slots).fill('');
    }
    let h = length;
    for (let k = start; k < end; k++) h = Math.imul(h ^ buf[k], 0x01000193);
    const slot = (h ^ (h >>> 15)) & this.mask;
    const bytes = this.bytes;
    const at = slot * MAX_CACHED_BYTES;
    if (this.lengths[slot] === length) {
      let k = 0;
      while (k < length && bytes[at + k] === buf[start + k]) k++;
      if (k === length) return this.strings[slot];
    }
    const value = (buf as Utf8Slicer).utf8Slice(start, end);
    for (let k = 0; k < length; k++) bytes[at + k] = buf[start + k];
    this.lengths[slot] = length;
    this.strings[slot] = value;
    return value;
  }
}
