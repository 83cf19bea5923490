import type { RawEntry } from './stream.entry.js';

/** An entry read (or claimed) and not yet settled, in group mode. */
export interface Held {
  entry: RawEntry;
  retryTimer?: NodeJS.Timeout;
  /** Its place in {@link HeldEntries}; -1 once released. */
  slot: number;
  /** Handed to an entry handler and not settled yet (a second settle is ignored). */
  out: boolean;
}

/**
 * Makes the record of an entry read (`slot` and `out` are set by
 * {@link HeldEntries}): a caller with its own per-entry object (the
 * transport's delivery) makes it the record, so an entry costs one object
 * from the read to the ack, not a record and a delivery.
 */
export type HoldEntry<H extends Held = Held> = (entry: RawEntry) => H;

/**
 * The entries a group subscriber holds, as records the settle path carries
 * along: adding and releasing one is an array write, never a hash-table
 * change. (A Map by id, filled by batches of reads and emptied by acks,
 * grew and shrank its table over and over: a rehash and a new table several
 * times per batch, about 170 bytes of garbage per entry.) Lookups by id are
 * for the rare paths only (claims, heartbeats), which scan.
 */
export class HeldEntries {
  private readonly items: Held[] = [];
  /** The records' maker, when not the plain record (see {@link HoldEntry}). */
  hold: HoldEntry | undefined = undefined;

  get size(): number {
    return this.items.length;
  }

  add(entry: RawEntry): Held {
    const hold = this.hold;
    let held: Held;
    if (hold === undefined) {
      held = { entry, retryTimer: undefined, slot: this.items.length, out: false };
    } else {
      held = hold(entry);
      held.slot = this.items.length;
      held.out = false;
    }
    this.items.push(held);
    return held;
  }

  /** Whether the record is still held (not released since). */
  holds(held: Held): boolean {
    return held.slot >= 0;
  }

  /** Releases a record; the last one takes its slot. @returns false if it was released already */
  remove(held: Held): boolean {
    const slot = held.slot;
    if (slot < 0) return false;
    const last = this.items.pop()!;
    if (last !== held) {
      this.items[slot] = last;
      last.slot = slot;
    }
    held.slot = -1;
    return true;
  }

  /** The ids held now. */
  ids(): string[] {
    return this.items.map(held => held.entry[0]);
  }

  values(): readonly Held[] {
    return this.items;
  }
}
