import { Test } from '@nestjs/testing';
import {
  FfiStartupError,
  NativeInitError,
  NativeLibraryError,
} from '../../../lib/ffi/ffi.errors.js';
import { FfiModule } from '../../../lib/ffi/ffi.module.js';
import { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import { uniqueName } from '../../helpers/services.js';
import { buildNative, fixture } from './ffi-fixtures.js';

// test/fixtures/ffi/needs-global.c opens a plugin that uses one of its
// symbols, as the Python shim's interpreter opens extension modules that use
// libpython's: without global: true its init fails with an undefined symbol.

beforeAll(() => buildNative(), 120_000);

function initError(load: () => unknown): NativeInitError {
  try {
    load();
  } catch (error) {
    return error as NativeInitError;
  }
  throw new Error('the load did not fail');
}

describe('load errors say what to do', () => {
  // First: once needs-global is loaded with global: true, its symbol is in
  // the global scope for the rest of this process.
  it('a library with an undefined symbol: NativeLibraryError says to link what defines it', () => {
    expect(() => NativeRuntime.load(fixture('needs_global_plugin'))).toThrow(NativeLibraryError);
    expect(() => NativeRuntime.load(fixture('needs_global_plugin'))).toThrow(
      /undefined symbol: herald_needs_global_symbol.*link the library that defines it/,
    );
  });

  it('init failing on an undefined symbol: NativeInitError names the runtime and hints at global: true', async () => {
    const cfg = `plugin=${fixture('needs_global_plugin')};${uniqueName('global')}`;
    const error = initError(() =>
      NativeRuntime.load(fixture('needs_global'), { cfg, name: 'plugin-host' }),
    );
    expect(error).toBeInstanceOf(NativeInitError);
    expect(error.runtime).toBe('plugin-host');
    expect(error.rc).toBe(3);
    expect(error.stderr).toMatch(/undefined symbol: herald_needs_global_symbol/);
    expect(error.message).toMatch(
      /^native runtime "plugin-host" \(.*needs_global\.so\) did not initialise: init returned 3/,
    );
    expect(error.message).toMatch(
      /it wrote: needs-global: cannot open its plugin: .*undefined symbol/,
    );
    expect(error.message).toMatch(/load it with global: true/);

    // The hint is right: with global: true the same runtime starts.
    const runtime = NativeRuntime.load(fixture('needs_global'), { cfg, global: true });
    expect((await runtime.call('x')).toString()).toBe('plugin says 42');
    runtime.close();
  });

  it('any other failing init: its rc and name, no global hint', () => {
    const error = initError(() =>
      NativeRuntime.load(fixture('cases'), { cfg: 'fail=5', name: 'cases-fail' }),
    );
    expect(error.rc).toBe(5);
    expect(error.message).toBe(
      `native runtime "cases-fail" (${fixture('cases')}) did not initialise: init returned 5`,
    );
    expect(error.hint).toBeUndefined();
  });

  it('through FfiModule: the module runtime name, the hint in the cause', async () => {
    const failing = Test.createTestingModule({
      imports: [
        FfiModule.forRoot({
          runtimes: [{ name: 'python-like', lib: fixture('cases'), cfg: 'fail=9' }],
        }),
      ],
    }).compile();
    const error = (await failing.catch((e: unknown) => e)) as FfiStartupError;
    expect(error).toBeInstanceOf(FfiStartupError);
    expect(error.cause).toBeInstanceOf(NativeInitError);
    expect((error.cause as NativeInitError).runtime).toBe('python-like');
    expect(error.message).toMatch(
      /runtime "python-like" cannot start: native runtime "python-like"/,
    );
  });
});
