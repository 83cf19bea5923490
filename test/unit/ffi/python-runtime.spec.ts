import { createHash } from 'node:crypto';
import path from 'node:path';
import { NativeRuntimeError } from '../../../lib/ffi/ffi.errors.js';
import { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import { uniqueName } from '../../helpers/services.js';
import { buildNative } from './ffi-fixtures.js';
import { runProbe } from './stderr-probe.js';
import { buildRuntimes, PYTHON_FIXTURES, PYTHON_SHIM, runtimeCases } from './language-runtimes.js';

// Modules named by their file: the shim puts the folder on sys.path.
const ECHO = path.join(PYTHON_FIXTURES, 'herald_echo.py');
const HASH = path.join(PYTHON_FIXTURES, 'herald_hash.py');

beforeAll(() => {
  buildNative();
  buildRuntimes('python');
}, 120_000);

const opened: NativeRuntime[] = [];
function load(cfg: string): NativeRuntime {
  const runtime = NativeRuntime.load(PYTHON_SHIM, { cfg, global: true, name: 'python' });
  opened.push(runtime);
  return runtime;
}
afterAll(() => opened.forEach(runtime => runtime.close()));

// lib/ffi/shims/python + test/fixtures/ffi/python/herald_echo.py.
runtimeCases({
  label: 'Python',
  lib: () => PYTHON_SHIM,
  cfg: unique => `${ECHO},init,${unique}`,
  cfgAnswer: unique => unique,
  failingCfg: `${ECHO},init,fail please`,
  failingRc: 2,
  failingStderr: 'RuntimeError: init asked to fail: fail please',
  global: true,
});

describe('Python shim', () => {
  it('runs a hashlib handler configured with JSON (cfg module,func,json)', async () => {
    const sha = load(
      `${HASH},init,{"algorithm": "sha256", "rounds": 3, "id": "${uniqueName('h')}"}`,
    );
    const md5 = load(`${HASH},init,{"algorithm": "md5", "id": "${uniqueName('h')}"}`);
    let expected = Buffer.from('nest-herald');
    for (let i = 0; i < 3; i++) expected = createHash('sha256').update(expected).digest();
    expect((await sha.call('nest-herald')).toString()).toBe(expected.toString('hex'));
    const inputs = Array.from({ length: 50 }, (_, i) => `payload ${i} `.repeat(i + 1));
    const digests = await Promise.all(inputs.map(input => md5.call(input)));
    digests.forEach((digest, i) =>
      expect(digest.toString()).toBe(createHash('md5').update(inputs[i]).digest('hex')),
    );
  });

  it('answers a plain exception with rc 1 and "Type: message", a bad return type too', async () => {
    const echo = load(`${ECHO},init,${uniqueName('exc')}`);
    const raised = await echo.call('raise').catch((e: unknown) => e);
    expect(raised).toBeInstanceOf(NativeRuntimeError);
    expect((raised as NativeRuntimeError).rc).toBe(1);
    expect((raised as NativeRuntimeError).response.toString()).toBe(
      'ValueError: a plain exception',
    );
    const badType = await echo.call('bad-type').catch((e: unknown) => e);
    expect((badType as NativeRuntimeError).rc).toBe(1);
    expect((badType as NativeRuntimeError).response.toString()).toBe(
      'TypeError: the handler returned int, expected bytes, str or None',
    );
    // The runtime keeps serving after both.
    expect((await echo.call('still here')).toString()).toBe('still here');
  });

  it('keeps the event loop free while Python works', async () => {
    const sha = load(
      `${HASH},init,{"algorithm": "sha256", "rounds": 300000, "id": "${uniqueName('slow')}"}`,
    );
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const answer = await sha.call('spin');
    clearInterval(timer);
    expect(answer.toString()).toMatch(/^[0-9a-f]{64}$/);
    expect(ticks).toBeGreaterThan(0);
  });

  it.each([
    ['no func', ECHO, 22, ''],
    ['an empty module', ',init', 22, ''],
    [
      'a module that does not exist',
      'herald_no_such_module,init',
      2,
      "ModuleNotFoundError: No module named 'herald_no_such_module'",
    ],
    [
      'a func that does not exist',
      `${ECHO},no_such_func`,
      2,
      "AttributeError: module 'herald_echo' has no attribute 'no_such_func'",
    ],
    [
      'a factory that returns no callable',
      'json,dumps,{}',
      2,
      'TypeError: json.dumps(cfg) returned str, expected a callable handler',
    ],
  ])(
    'refuses to start with %s (cfg %j, init rc %d), saying why on stderr',
    async (_what, cfg, rc, said) => {
      // In a process of its own: the shim prints Python's traceback to fd 2.
      const { result, stderr } = await runProbe<{ error: string; cause: string; rc: number }>({
        start: { name: 'bad', lib: PYTHON_SHIM, cfg, global: true },
      });
      expect(result).toEqual({ error: 'FfiStartupError', cause: 'NativeInitError', rc });
      if (said) expect(stderr).toContain(said);
      else expect(stderr).not.toContain('Traceback');
    },
  );
});
