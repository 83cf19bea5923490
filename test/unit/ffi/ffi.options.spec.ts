import { InvalidOptionsError } from '../../../lib/common/errors.js';
import { FfiModule } from '../../../lib/ffi/ffi.module.js';
import {
  resolveFfiModuleAsyncOptions,
  resolveFfiModuleOptions,
  type FfiModuleAsyncOptions,
  type FfiModuleOptions,
} from '../../../lib/ffi/ffi.options.js';

const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return (error as Error).message;
  }
  throw new Error('not refused');
};
const asOptions = (value: unknown): FfiModuleOptions => value as FfiModuleOptions;

describe('FfiModule options', () => {
  it('resolves isGlobal and keeps the runtimes', () => {
    const runtimes = [{ name: 'a', lib: 'demo', cfg: 'x', zeroLength: 'empty' as const }];
    expect(resolveFfiModuleOptions({ runtimes })).toEqual({ runtimes, isGlobal: true });
    expect(resolveFfiModuleOptions({ runtimes, isGlobal: false }).isGlobal).toBe(false);
  });

  it('refuses wrong types and unknown keys at forRoot, before anything loads', () => {
    expect(message(() => FfiModule.forRoot(asOptions({ runtimes: 'demo' })))).toBe(
      'FfiModule: runtimes must be an array of { name, lib, cfg?, maxQueue?, ... } (got "demo", a string)',
    );
    expect(message(() => FfiModule.forRoot(asOptions({ runtimes: [], isGlobal: 'no' })))).toBe(
      'FfiModule: isGlobal must be a boolean (got "no", a string)',
    );
    expect(message(() => FfiModule.forRoot(asOptions({ runtimes: [], wildcard: true })))).toMatch(
      /^FfiModule: unknown option 'wildcard'/,
    );
  });

  it('refuses a bad runtime definition, naming its index and name', () => {
    expect(
      message(() =>
        resolveFfiModuleOptions(asOptions({ runtimes: [{ name: 'a', lib: 'demo', threads: 2 }] })),
      ),
    ).toMatch(/^FfiModule: runtimes\[0\]: unknown option 'threads'/);
    expect(message(() => resolveFfiModuleOptions(asOptions({ runtimes: [{ lib: 'demo' }] })))).toBe(
      'FfiModule: runtimes[0]: name must be a non-empty string (got undefined)',
    );
    expect(
      message(() =>
        resolveFfiModuleOptions(
          asOptions({
            runtimes: [
              { name: 'a', lib: 'x' },
              { name: 'a', lib: 'y' },
            ],
          }),
        ),
      ),
    ).toBe('FfiModule: runtimes[1]: name must be unique among the runtimes (got "a", a string)');
    expect(
      message(() =>
        resolveFfiModuleOptions(asOptions({ runtimes: [{ name: 'h', lib: 'x', maxQueue: '8' }] })),
      ),
    ).toBe(
      'FfiModule: runtimes[0] ("h"): NativeRuntime: maxQueue must be an integer from 1 to 2147483647 (got "8", a string)',
    );
    expect(
      message(() =>
        resolveFfiModuleOptions(asOptions({ runtimes: [{ name: 'h', lib: 'x', methods: 1 }] })),
      ),
    ).toBe('FfiModule: runtimes[0]: methods must be a boolean (got 1, a number)');
    expect(
      message(() =>
        resolveFfiModuleOptions(
          asOptions({ runtimes: [{ name: 'h', lib: 'x', pollerSpinUs: -5 }] }),
        ),
      ),
    ).toBe(
      'FfiModule: runtimes[0] ("h"): NativeRuntime: pollerSpinUs must be an integer from 0 to 1000000 (got -5, a number)',
    );
  });

  it('takes pollerSpinUs per runtime, as NativeRuntime.load does', () => {
    const runtimes = [{ name: 'a', lib: 'demo', pollerSpinUs: 0 }];
    expect(resolveFfiModuleOptions({ runtimes }).runtimes).toEqual(runtimes);
  });

  it('forRootAsync: wrong types and unknown keys', () => {
    const async = (value: unknown): FfiModuleAsyncOptions => value as FfiModuleAsyncOptions;
    const useFactory = () => ({ runtimes: [] });
    expect(message(() => FfiModule.forRootAsync(async({ names: 'a', useFactory })))).toBe(
      'FfiModule.forRootAsync: names must be an array of non-empty strings (got "a", a string)',
    );
    expect(message(() => resolveFfiModuleAsyncOptions(async({ names: [], useFactory: 3 })))).toBe(
      'FfiModule.forRootAsync: useFactory must be a function (got 3, a number)',
    );
    expect(
      message(() => resolveFfiModuleAsyncOptions(async({ names: [], useFactory, useClass: 1 }))),
    ).toMatch(/^FfiModule.forRootAsync: unknown option 'useClass'/);
    expect(resolveFfiModuleAsyncOptions(async({ names: ['a'], useFactory }))).toMatchObject({
      inject: [],
      isGlobal: true,
    });
  });
});
