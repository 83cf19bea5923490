import { systemClock, type Clock } from './clock.js';
import { integerOption, optionsObject, positiveNumberOption } from './options.validation.js';

/** Options of the unique cache. @publicApi */
export interface UniqueOptions {
  /** How long a unique key blocks repeats, in ms. @default 2000 */
  ttlMs?: number;
  /** How many live keys are remembered (LRU beyond that). @default 1024 */
  cacheSize?: number;
}

/** Resolved {@link UniqueOptions}. */
export interface ResolvedUniqueOptions {
  readonly ttlMs: number;
  readonly cacheSize: number;
}

/**
 * Validates unique options (the original refuses a `unique_timeout` of `'1'`
 * or -1 too): `ttlMs` a finite number > 0, `cacheSize` an integer >= 1,
 * nothing else; throws `InvalidOptionsError` naming the value and its type.
 * `scope` names the owner in the message (`EventBus unique`, `ipc broker unique`).
 * @publicApi
 */
export function resolveUniqueOptions(
  options: UniqueOptions | undefined,
  scope = 'unique',
): ResolvedUniqueOptions {
  const given = optionsObject(scope, options, ['ttlMs', 'cacheSize']);
  return {
    ttlMs: positiveNumberOption(scope, 'ttlMs', given.ttlMs, 2000),
    cacheSize: integerOption(scope, 'cacheSize', given.cacheSize, 1024, 1),
  };
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
    ({ ttlMs: this.ttlMs, cacheSize: this.cacheSize } = resolveUniqueOptions(options));
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
