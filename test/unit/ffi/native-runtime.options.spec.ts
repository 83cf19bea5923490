import { InvalidOptionsError } from '../../../lib/common/errors.js';
import { consoleLogger } from '../../../lib/common/logger.js';
import {
  resolveNativeCallOptions,
  resolveNativeRuntimeOptions,
  type NativeCallOptions,
  type NativeRuntimeOptions,
} from '../../../lib/ffi/native-runtime.options.js';

const refused = (fn: () => unknown): InvalidOptionsError => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error('not refused');
};

describe('resolveNativeRuntimeOptions', () => {
  it('applies the defaults', () => {
    expect(resolveNativeRuntimeOptions('/opt/lib/libdemo.so', undefined)).toEqual({
      lib: '/opt/lib/libdemo.so',
      cfg: undefined,
      maxQueue: 65536,
      name: 'libdemo.so',
      global: false,
      zeroLength: 'cstring',
      pollerSpinUs: 50,
      logger: consoleLogger,
    });
  });

  it.each([
    [
      'maxQueue',
      { maxQueue: '4' },
      `NativeRuntime: maxQueue must be an integer from 1 to 2147483647 (got "4", a string)`,
    ],
    [
      'maxQueue',
      { maxQueue: 0 },
      'maxQueue must be an integer from 1 to 2147483647 (got 0, a number)',
    ],
    [
      'cfg',
      { cfg: 7 },
      'cfg must be a string without NUL characters (it is passed as a C string) (got 7, a number)',
    ],
    ['cfg', { cfg: 'a\0b' }, 'cfg must be a string without NUL characters'],
    ['name', { name: '' }, 'name must be a non-empty string (got "", a string)'],
    ['global', { global: 'yes' }, 'global must be a boolean (got "yes", a string)'],
    [
      'zeroLength',
      { zeroLength: 'nul' },
      `zeroLength must be one of 'cstring', 'empty' (got "nul", a string)`,
    ],
    [
      'pollerSpinUs',
      { pollerSpinUs: -1 },
      'pollerSpinUs must be an integer from 0 to 1000000 (got -1, a number)',
    ],
    [
      'pollerSpinUs',
      { pollerSpinUs: 2.5 },
      'pollerSpinUs must be an integer from 0 to 1000000 (got 2.5, a number)',
    ],
    [
      'pollerSpinUs',
      { pollerSpinUs: '50' },
      'pollerSpinUs must be an integer from 0 to 1000000 (got "50", a string)',
    ],
    [
      'logger',
      { logger: { warn: () => undefined } },
      'logger must be a logger with log, warn and error methods',
    ],
  ])('refuses a bad %s, naming it and the value with its type', (_option, options, message) => {
    expect(
      refused(() => resolveNativeRuntimeOptions('demo', options as NativeRuntimeOptions)).message,
    ).toContain(message);
  });

  it('refuses a bad lib and unknown keys', () => {
    expect(refused(() => resolveNativeRuntimeOptions('', {})).message).toBe(
      'NativeRuntime: lib must be a non-empty string (got "", a string)',
    );
    expect(refused(() => resolveNativeRuntimeOptions(42, {})).message).toContain(
      '(got 42, a number)',
    );
    const unknown = { cfg: 'x', threads: 4 } as unknown as NativeRuntimeOptions;
    expect(refused(() => resolveNativeRuntimeOptions('demo', unknown)).message).toMatch(
      /^NativeRuntime: unknown option 'threads' \(known: cfg, maxQueue, name, global, zeroLength, pollerSpinUs, logger\)/,
    );
  });
});

describe('resolveNativeCallOptions', () => {
  it('passes good options and returns the error for bad ones (the call rejects with it)', () => {
    const signal = new AbortController().signal;
    expect(resolveNativeCallOptions({ timeoutMs: 5, signal })).toEqual({ timeoutMs: 5, signal });
    expect(resolveNativeCallOptions(undefined)).toEqual({});
    const wrongType = resolveNativeCallOptions({ timeoutMs: '5' } as unknown as NativeCallOptions);
    expect(wrongType).toBeInstanceOf(InvalidOptionsError);
    expect((wrongType as Error).message).toBe(
      'NativeRuntime.call: timeoutMs must be a finite number > 0 (got "5", a string)',
    );
    const unknown = resolveNativeCallOptions({ timeout: 5 } as unknown as NativeCallOptions);
    expect((unknown as Error).message).toMatch(/unknown option 'timeout'/);
    const badSignal = resolveNativeCallOptions({ signal: {} } as unknown as NativeCallOptions);
    expect((badSignal as Error).message).toContain('signal must be an AbortSignal');
  });
});
