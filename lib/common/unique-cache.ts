import { systemClock, type Clock } from './clock.js';

/** Options of the unique cache. @publicApi */
export interface UniqueOptions {
  /** How long a unique key blocks repeats, in ms. @default 2000 */
  ttlMs?: number;
  /** How many live keys are remembered (LRU beyond that). @default 1024 */
  cacheSize?: number;
}

/**
 * Remembers unique keys for `ttlMs`, at most `cacheSize` of them (least
 * recently seen evicted first, as the original's lrucache). The key alone
 * is the identity. Transports use it where they decide who runs a unique
 * event (the local transport, the ipc broker).
 * @publicApi
 */
export class UniqueCache {
  readonly ttlMs: number;
  readonly cacheSize: number;
  /** Map iteration order is insertion order: the first entry is the oldest. */
  private readonly expiries = new Map<string, number>();

  constructor(
    options: UniqueOptions = {},
    private readonly clock: Clock = systemClock,
  ) {
    this.ttlMs = options.ttlMs ?? 2000;
    this.cacheSize = options.cacheSize ?? 1024;
  }

  /**
   * True when `key` was not seen within the TTL, and records it; false when
   * it is a repeat to drop.
   */
  claim(key: string): boolean {
    const now = this.clock.now();
    const expiry = this.expiries.get(key);
    if (expiry !== undefined) {
      this.expiries.delete(key);
      if (expiry > now) {
        this.expiries.set(key, expiry);
        return false;
      }
    }
    this.expiries.set(key, now + this.ttlMs);
    if (this.expiries.size > this.cacheSize) {
      const oldest = this.expiries.keys().next().value as string;
      this.expiries.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.expiries.size;
  }

  clear(): void {
    this.expiries.clear();
  }
}
