import { HANDLED_IDS_CACHE_SIZE } from './ipc.constants.js';

/**
 * One generation of ids: an open-addressing hash table over the ids' UTF-8
 * bytes, kept in typed arrays. No string and no object per id: a Set of
 * the id strings kept 65,536–131,072 of them alive, each promoted to the
 * old generation, and cost about 10% of a busy worker's CPU plus GC.
 */
/** Shared by every generation until its first id: a client that receives nothing allocates nothing. */
const NO_INTS = new Int32Array(1);
const NO_BYTES = new Uint8Array(0);

class Generation {
  /** Entry index + 1 per slot (0: empty); twice the entries' room, so probes stay short. */
  private table = NO_INTS;
  private mask = 0;
  private hashes = NO_INTS;
  /** Entry i's bytes are arena[starts[i], starts[i + 1]). */
  private starts = NO_INTS;
  private arena = NO_BYTES;
  /** Entries there is room for now; grows by doubling up to the capacity (a client may idle with few). */
  private room = 0;
  count = 0;

  constructor(private readonly capacity: number) {}

  get full(): boolean {
    return this.count >= this.capacity;
  }

  /** The slot holding these bytes, or the empty slot where they would go (as ~slot). */
  find(buf: Uint8Array, start: number, end: number, hash: number): number {
    if (this.count === 0) return ~0;
    const { table, mask, hashes, starts, arena } = this;
    const length = end - start;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = table[slot];
      if (entry === 0) return ~slot;
      const i = entry - 1;
      if (hashes[i] !== hash) continue;
      const from = starts[i];
      if (starts[i + 1] - from !== length) continue;
      let k = 0;
      while (k < length && arena[from + k] === buf[start + k]) k++;
      if (k === length) return slot;
    }
  }

  /** Adds bytes that find() did not find (not full). */
  add(buf: Uint8Array, start: number, end: number, hash: number): void {
    if (this.count >= this.room) this.grow();
    const i = this.count++;
    const from = this.starts[i];
    const length = end - start;
    if (from + length > this.arena.length) {
      let size = Math.max(1024, this.arena.length * 2);
      while (size < from + length) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.arena.subarray(0, from));
      this.arena = bigger;
    }
    const arena = this.arena;
    for (let k = 0; k < length; k++) arena[from + k] = buf[start + k];
    this.starts[i + 1] = from + length;
    this.hashes[i] = hash;
    this.place(i);
  }

  private place(i: number): void {
    const { table, mask } = this;
    let slot = this.hashes[i] & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    table[slot] = i + 1;
  }

  private grow(): void {
    const room = Math.min(this.capacity, Math.max(64, this.room * 2));
    const hashes = new Int32Array(room);
    hashes.set(this.hashes.subarray(0, this.count));
    const starts = new Int32Array(room + 1);
    starts.set(this.starts.subarray(0, this.count + 1));
    this.hashes = hashes;
    this.starts = starts;
    this.room = room;
    let slots = 2;
    while (slots < room * 2) slots *= 2;
    this.table = new Int32Array(slots);
    this.mask = slots - 1;
    for (let i = 0; i < this.count; i++) this.place(i);
  }

  clear(): void {
    this.table.fill(0);
    this.count = 0;
  }
}

/**
 * FNV-1a over the bytes, then a final mix (murmur3's): FNV's low bits, which
 * pick the slot, depend only on the bytes' low bits, and ids that differ in
 * a few digits would pile up in a few runs of slots.
 */
function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let k = start; k < end; k++) h = Math.imul(h ^ buf[k], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * Ids of events this process handed to the bus recently, in two
 * generations of at most `capacity` each (the last `capacity` to
 * 2 x `capacity`): a copy resent after a failover (by its poster or a
 * witness) that was handled here already is told apart by its id. Ids are
 * compared by their UTF-8 bytes, as they arrive: equal bytes decode to
 * equal strings and back.
 */
export class HandledIds {
  private current: Generation;
  private previous: Generation;

  constructor(capacity = HANDLED_IDS_CACHE_SIZE) {
    this.current = new Generation(capacity);
    this.previous = new Generation(capacity);
  }

  /**
   * Records the id in `buf[start, end)` as handled.
   * @returns false when it was recorded already (the oldest ids are forgotten first).
   */
  firstTime(buf: Uint8Array, start: number, end: number): boolean {
    const hash = hashBytes(buf, start, end);
    if (this.previous.find(buf, start, end, hash) >= 0) return false;
    if (this.current.find(buf, start, end, hash) >= 0) return false;
    if (this.current.full) {
      const older = this.previous;
      this.previous = this.current;
      older.clear();
      this.current = older;
    }
    this.current.add(buf, start, end, hash);
    return true;
  }
}
