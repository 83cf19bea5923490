/** A growable ring buffer with indexed access: the broker's per-worker queue. */
export class Ring<T> {
  private items: (T | undefined)[];
  private mask: number;
  private head = 0;
  length = 0;

  constructor(initialCapacity = 64) {
    let size = 16;
    while (size < initialCapacity) size *= 2;
    this.items = new Array<T | undefined>(size);
    this.mask = size - 1;
  }

  push(item: T): void {
    if (this.length === this.items.length) this.grow();
    this.items[(this.head + this.length) & this.mask] = item;
    this.length++;
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.length--;
    return item;
  }

  /** The item `index` places from the oldest. */
  at(index: number): T | undefined {
    return index < 0 || index >= this.length
      ? undefined
      : this.items[(this.head + index) & this.mask];
  }

  private grow(): void {
    const bigger = new Array<T | undefined>(this.items.length * 2);
    for (let i = 0; i < this.length; i++) bigger[i] = this.items[(this.head + i) & this.mask];
    this.items = bigger;
    this.head = 0;
    this.mask = bigger.length - 1;
  }
}
