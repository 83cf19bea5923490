import { InvalidOptionsError } from '../../../lib/common/errors.js';
import { resolveUniqueOptions, UniqueCache } from '../../../lib/common/unique-cache.js';

// Issue 22 point 1: the unique cache refuses what would silently disable unique.
describe('unique cache options', () => {
  it('applies the defaults', () => {
    expect(resolveUniqueOptions(undefined)).toEqual({ ttlMs: 2000, cacheSize: 1024 });
    expect(new UniqueCache({ ttlMs: 0.5 }).ttlMs).toBe(0.5);
  });

  it.each([
    [{ ttlMs: 0 }, 'unique: ttlMs must be a finite number > 0 (got 0, a number)'],
    [{ ttlMs: -1 }, 'unique: ttlMs must be a finite number > 0 (got -1, a number)'],
    [{ ttlMs: '1' }, 'unique: ttlMs must be a finite number > 0 (got "1", a string)'],
    [{ ttlMs: Number.NaN }, 'unique: ttlMs must be a finite number > 0 (got NaN, a number)'],
    [{ cacheSize: 0 }, 'unique: cacheSize must be an integer >= 1 (got 0, a number)'],
    [{ cacheSize: 2.5 }, 'unique: cacheSize must be an integer >= 1 (got 2.5, a number)'],
    [{ size: 3 }, "unique: unknown option 'size'"],
  ])('refuses %j with InvalidOptionsError naming the value and its type', (options, message) => {
    expect(() => new UniqueCache(options as never)).toThrow(InvalidOptionsError);
    expect(() => new UniqueCache(options as never)).toThrow(message);
  });
});
