import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Test, type TestingModule } from '@nestjs/testing';
import { NativeRuntimeError, RuntimeUnloadedError } from '../../../lib/ffi/ffi.errors.js';
import { FfiModule } from '../../../lib/ffi/ffi.module.js';
import { getRuntimeToken } from '../../../lib/ffi/ffi.constants.js';
import type { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import { ROOT } from '../../helpers/processes.js';
import { uniqueName } from '../../helpers/services.js';
import { runProbe } from './stderr-probe.js';

interface Built {
  output: string | null;
  built: boolean;
  absent?: boolean;
}

/**
 * Builds the Rust/Go runtimes and the Python shim with
 * scripts/build-ffi-runtimes.mjs (fast when nothing changed). `go` is
 * optional: its summary says `absent` when there is no Go toolchain.
 */
export function buildRuntimes(...targets: ('python' | 'rust' | 'go')[]): Record<string, Built> {
  const out = execFileSync(
    process.execPath,
    [path.join(ROOT, 'scripts', 'build-ffi-runtimes.mjs'), ...targets, '--go-optional'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, Built>;
}

export const PYTHON_SHIM = path.join(ROOT, 'lib', 'ffi', 'shims', 'build', 'libherald_python3.so');
export const PYTHON_FIXTURES = path.join(ROOT, 'test', 'fixtures', 'ffi', 'python');

export interface LanguageRuntime {
  label: string;
  lib: () => string;
  /** A cfg that starts the echo, unique per call (`unique` makes it so). */
  cfg: (unique: string) => string;
  /** What the runtime answers to "cfg" when loaded with `cfg(unique)`. */
  cfgAnswer: (unique: string) => string;
  /** A cfg whose init fails, and the rc the runtime returns for it. */
  failingCfg: string;
  failingRc: number;
  /** What the runtime writes to stderr when its init fails; nothing when absent. */
  failingStderr?: string;
  global?: boolean;
}

/**
 * The echo and error cases of the C runtime (test/fixtures/ffi/echo.c and
 * cases.c), for a runtime in another language, through FfiModule.
 */
export function runtimeCases(runtime: LanguageRuntime): void {
  describe(`${runtime.label} runtime through FfiModule`, () => {
    let moduleRef: TestingModule;
    let echo: NativeRuntime;
    const unique = uniqueName(runtime.label.toLowerCase());

    beforeAll(async () => {
      moduleRef = await Test.createTestingModule({
        imports: [
          FfiModule.forRoot({
            runtimes: [
              {
                name: 'lang',
                lib: runtime.lib(),
                cfg: runtime.cfg(unique),
                global: runtime.global ?? false,
              },
            ],
          }),
        ],
      }).compile();
      await moduleRef.init();
      echo = moduleRef.get<NativeRuntime>(getRuntimeToken('lang'));
    });

    it('echoes strings and bytes', async () => {
      expect((await echo.call('hello')).toString()).toBe('hello');
      expect((await echo.call('héllo ✓ 你好')).toString()).toBe('héllo ✓ 你好');
      expect((await echo.call(Buffer.from('bytes in'))).toString()).toBe('bytes in');
    });

    it('echoes answers beyond the copy limit (handed over without a copy)', async () => {
      const big = 'x'.repeat(100_000) + 'end';
      expect((await echo.call(big)).toString()).toBe(big);
    });

    it('answers nothing with an empty Buffer', async () => {
      expect(await echo.call('null')).toEqual(Buffer.alloc(0));
    });

    it('rejects rc != 0 with NativeRuntimeError carrying rc and the message', async () => {
      const error = await echo.call('fail:7:not today').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NativeRuntimeError);
      expect((error as NativeRuntimeError).rc).toBe(7);
      expect((error as NativeRuntimeError).response.toString()).toContain('not today');
      expect((error as NativeRuntimeError).runtime).toBe('lang');
    });

    it('gets its cfg (copied before the host freed it)', async () => {
      expect((await echo.call('cfg')).toString()).toBe(runtime.cfgAnswer(unique));
    });

    it('answers 400 concurrent calls, each with its own answer', async () => {
      const answers = await Promise.all(
        Array.from({ length: 400 }, (_, i) => echo.call(`call ${i}`)),
      );
      answers.forEach((answer, i) => expect(answer.toString()).toBe(`call ${i}`));
      expect(echo.stats()).toMatchObject({ inFlight: 0, queued: 0, failed: 1 });
    });

    it('fails start-up with FfiStartupError when its init fails, saying why on stderr', async () => {
      // In a process of its own: the runtime's own report goes to fd 2.
      const { result, stderr } = await runProbe<{ error: string; cause: string; rc: number }>({
        start: {
          name: 'broken',
          lib: runtime.lib(),
          cfg: runtime.failingCfg,
          global: runtime.global ?? false,
        },
      });
      expect(result).toEqual({
        error: 'FfiStartupError',
        cause: 'NativeInitError',
        rc: runtime.failingRc,
      });
      if (runtime.failingStderr) expect(stderr).toContain(runtime.failingStderr);
      else expect(stderr).toBe('');
    });

    it('is unloaded at shutdown: later calls reject with RuntimeUnloadedError', async () => {
      await moduleRef.close();
      expect(echo.closed).toBe(true);
      await expect(echo.call('after shutdown')).rejects.toBeInstanceOf(RuntimeUnloadedError);
    });
  });
}
