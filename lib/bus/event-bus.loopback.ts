import type { Envelope } from '../interfaces/envelope.interface.js';
import type { TransportFeatures } from '../interfaces/transport.interface.js';

/** Where an id's last two characters start: `UuidSource` counts through a block there. */
const PREFIX = 34;
/** Lowercase hex digit -> value, anything else -> -1. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX['0123456789abcdef'.charCodeAt(i)] = i;

/**
 * The number (0-255) an id's last two characters spell in lowercase hex, or
 * -1. An id of 36 characters is then exactly its first 34 and this number.
 */
function suffixOf(id: string): number {
  if (id.length !== PREFIX + 2) return -1;
  const high = HEX[id.charCodeAt(PREFIX)] ?? -1;
  const low = HEX[id.charCodeAt(PREFIX + 1)] ?? -1;
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

/** The watched ids that share a 34-character prefix: one bit per suffix. */
class Block {
  readonly bits = new Uint32Array(8);
  count = 0;
  constructor(readonly prefix: string) {}

  has(n: number): boolean {
    return (this.bits[n >>> 5] & (1 << (n & 31))) !== 0;
  }

  set(n: number): void {
    this.bits[n >>> 5] |= 1 << (n & 31);
    this.count++;
  }

  unset(n: number): void {
    this.bits[n >>> 5] &= ~(1 << (n & 31));
    this.count--;
  }

  /** The lowest suffix set: the oldest, as `UuidSource` counts upwards. */
  lowest(): number {
    for (let word = 0; word < 8; word++) {
      const bits = this.bits[word];
      if (bits !== 0) return word * 32 + (31 - Math.clz32(bits & -bits));
    }
    return -1;
  }
}

/**
 * This process's own posts that must still come back through a transport
 * that leaves the process (ipc, pg, redis), so `whenIdle` does not call the
 * bus idle between "the transport accepted it" and "our handlers got it".
 * Bounded (oldest forgotten first), and the waits on it are bounded in time,
 * so a copy an at-most-once transport lost never holds anything for ever.
 * The local transport hands posts back inside `publish`: nothing to watch.
 * `unique` posts are not watched: another process may be the one to run them.
 *
 * It is on every post's and every delivery's path, so it holds the ids the
 * bus makes (`UuidSource`: blocks of 256 sharing their first 34 characters,
 * then two counting hex digits) as one bit each in a block per prefix, and
 * keeps the block last used on each side: a post and a delivery compare 34
 * characters and flip a bit, where a set of id strings hashed each arriving
 * id (a new string every time) and grew and rehashed a table of thousands
 * (about 1 µs per event on pg). Any other id is held in a plain set.
 */
export class LoopbackWatch {
  private readonly blocks = new Map<string, Block>();
  /** Ids not of the `UuidSource` form. */
  private readonly others = new Set<string>();
  private pending = 0;
  /** The block of the last post and of the last delivery (consecutive ids share it). */
  private postBlock?: Block;
  private arrivalBlock?: Block;
  private readonly active: boolean;

  constructor(
    features: TransportFeatures,
    private readonly bound: number,
  ) {
    this.active = features.loopback && features.reach !== 'process';
  }

  get size(): number {
    return this.pending;
  }

  /** Starts watching for this post's own copy; @returns whether it is watched. */
  expect(envelope: Envelope): boolean {
    if (!this.active || envelope.unique !== undefined) return false;
    const id = envelope.id;
    const n = suffixOf(id);
    if (n < 0) {
      if (!this.others.has(id)) {
        this.others.add(id);
        this.pending++;
      }
    } else {
      let block = this.postBlock;
      if (block === undefined || !id.startsWith(block.prefix)) {
        const prefix = id.slice(0, PREFIX);
        block = this.blocks.get(prefix);
        if (block === undefined) this.blocks.set(prefix, (block = new Block(prefix)));
        this.postBlock = block;
      }
      if (!block.has(n)) {
        block.set(n);
        this.pending++;
      }
    }
    if (this.pending > this.bound) this.forgetOldest();
    return true;
  }

  /** An envelope was delivered: if it is one of ours, it is no longer awaited. */
  arrived(envelope: Envelope): void {
    if (this.pending > 0) this.forget(envelope.id);
  }

  forget(id: string): void {
    const n = suffixOf(id);
    if (n < 0) {
      if (this.others.delete(id)) this.pending--;
      return;
    }
    let block = this.arrivalBlock;
    if (block === undefined || !id.startsWith(block.prefix)) {
      block = this.blocks.get(id.slice(0, PREFIX));
      if (block === undefined) return;
      this.arrivalBlock = block;
    }
    if (block.has(n)) this.unset(block, n);
  }

  clear(): void {
    this.blocks.clear();
    this.others.clear();
    this.pending = 0;
    this.postBlock = this.arrivalBlock = undefined;
  }

  private unset(block: Block, n: number): void {
    block.unset(n);
    this.pending--;
    if (block.count > 0) return;
    this.blocks.delete(block.prefix);
    if (this.postBlock === block) this.postBlock = undefined;
    if (this.arrivalBlock === block) this.arrivalBlock = undefined;
  }

  /**
   * Over the bound: the oldest id goes (blocks in the order made, ids
   * counting up in each); ids of another form first (the bus makes none).
   */
  private forgetOldest(): void {
    if (this.others.size > 0) {
      this.others.delete(this.others.values().next().value!);
      this.pending--;
      return;
    }
    const block = this.blocks.values().next().value;
    if (block !== undefined) this.unset(block, block.lowest());
  }
}
