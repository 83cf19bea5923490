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
import { runProbe } from './stderr-probe.js';

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
  it('a library with an undefined symbol: NativeLibraryError says to link what defines it', () => {
    expect(() => NativeRuntime.load(fixture('needs_global_plugin'))).toThrow(NativeLibraryError);
    expect(() => NativeRuntime.load(fixture('needs_global_plugin'))).toThrow(
      /undefined symbol: herald_needs_global_symbol.*link the library that defines it/,
    );
  });

  it('init failing on an undefined symbol: NativeInitError names the runtime and hints at global: true', async () => {
    // In a process of its own: what init writes to stderr is passed on to
    // the real stderr, which this test captures and asserts on.
    const cfg = `plugin=${fixture('needs_global_plugin')};${uniqueName('global')}`;
    const { result, stderr } = await runProbe<{
      runtime: string;
      rc: number;
      stderr: string;
      message: string;
      hint?: string;
      answer?: string;
    }>({
      initError: { lib: fixture('needs_global'), name: 'plugin-host', cfg, retryGlobal: true },
    });
    expect(result.runtime).toBe('plugin-host');
    expect(result.rc).toBe(3);
    expect(result.stderr).toMatch(/undefined symbol: herald_needs_global_symbol/);
    expect(result.message).toMatch(
      /^native runtime "plugin-host" \(.*needs_global\.so\) did not initialise: init returned 3/,
    );
    expect(result.message).toMatch(
      /it wrote: needs-global: cannot open its plugin: .*undefined symbol/,
    );
    expect(result.message).toMatch(/load it with global: true/);
    expect(result.hint).toMatch(/global: true/);
    expect(stderr).toMatch(/^needs-global: cannot open its plugin: .*undefined symbol/m);
    // The hint is right: with global: true the same runtime starts.
    expect(result.answer).toBe('plugin says 42');
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
