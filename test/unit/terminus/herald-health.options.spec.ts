import { InvalidOptionsError } from '../../../lib/common/errors.js';
import {
  resolveHeraldHealthOptions,
  resolveHeraldRuntimeHealthOptions,
} from '../../../lib/terminus/herald-health.options.js';

describe('resolveHeraldHealthOptions', () => {
  it('applies the defaults', () => {
    expect(resolveHeraldHealthOptions(undefined)).toEqual({
      maxLag: 10_000,
      maxHeartbeatAgeMs: 60_000,
    });
  });

  it('refuses a wrong-typed value and an unknown key with InvalidOptionsError naming them', () => {
    expect(() => resolveHeraldHealthOptions({ maxLag: '10' as never })).toThrow(
      new InvalidOptionsError(
        'HeraldHealthIndicator: maxLag must be a finite number >= 0 (got "10", a string)',
      ),
    );
    expect(() => resolveHeraldHealthOptions({ timeout: 5 } as never)).toThrow(
      /HeraldHealthIndicator: unknown option 'timeout'/,
    );
  });
});

describe('resolveHeraldRuntimeHealthOptions', () => {
  it('refuses a share over 1, names that are not strings, and unknown keys', () => {
    expect(() => resolveHeraldRuntimeHealthOptions({ maxQueueShare: 2 })).toThrow(
      /maxQueueShare must be a number > 0 and <= 1 \(got 2, a number\)/,
    );
    expect(() => resolveHeraldRuntimeHealthOptions({ names: [1] as never })).toThrow(
      /names must be an array of runtime names \(got an array of 1\)/,
    );
    expect(() => resolveHeraldRuntimeHealthOptions({ name: 'x' } as never)).toThrow(
      InvalidOptionsError,
    );
  });
});
