import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { InvalidOptionsError, QueueFullError } from '../../../lib/common/errors.js';
import {
  InvalidNativeRequestError,
  NativeCallTimeoutError,
  NativeInitError,
  NativeLibraryError,
  NativeRuntimeError,
  RuntimeUnloadedError,
} from '../../../lib/ffi/ffi.errors.js';
import { addonPath, type HeraldFfiAddon } from '../../../lib/ffi/native-addon.js';
import { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import { withMethods } from '../../../lib/ffi/runtime-methods.js';
import { ROOT } from '../../helpers/processes.js';
import { uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { buildNative, FIXTURE_DIR, fixture } from './ffi-fixtures.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { runProbe } from './stderr-probe.js';

const opened: NativeRuntime[] = [];
/** Loads a runtime that afterAll closes (closing twice is a no-op). */
function load(lib: string, options: Parameters<typeof NativeRuntime.load>[1] = {}): NativeRuntime {
  const runtime = NativeRuntime.load(lib, options);
  opened.push(runtime);
  return runtime;
}

const logDir = tempDir('herald-gate-');

/** A gate runtime with `threads` pollers, plus a control instance of the same library to open/shut its gate. */
function gate(
  threads: number,
  extra = '',
): { runtime: NativeRuntime; control: NativeRuntime; log: string } {
  const log = path.join(logDir, `${uniqueName('gate')}.log`);
  const runtime = load(fixture('gate'), {
    cfg: `threads=${threads};log=${log}${extra}`,
    name: 'gate',
  });
  const control = load(fixture('gate'), {
    cfg: `threads=1;${uniqueName('control')}`,
    name: 'gate-control',
  });
  return { runtime, control, log };
}

const exits = (log: string): number => {
  try {
    return readFileSync(log, 'utf8')
      .split('\n')
      .filter(line => line === 'exit').length;
  } catch {
    return 0;
  }
};

/** Waits until every poller of `runtime` took a task (none idle, none queued). */
const allPollersBusy = (runtime: NativeRuntime): Promise<boolean> =>
  waitFor(() => {
    const { queued, idlePollers } = runtime.stats();
    return queued === 0 && idlePollers === 0;
  });

function fnv1a(data: string, rounds: number): string {
  let h = 0xcbf29ce484222325n;
  const bytes = Buffer.from(data);
  for (let r = 0; r < rounds; r++) {
    for (const byte of bytes) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

beforeAll(() => buildNative(), 120_000);
afterAll(() => {
  for (const runtime of opened) runtime.close();
});

describe('NativeRuntime: answers', () => {
  let echo: NativeRuntime;
  beforeAll(() => {
    echo = load(fixture('echo'), { cfg: 'threads=2' });
  });

  it.each([
    ['0 B', Buffer.alloc(0)],
    ['1 B', Buffer.from('x')],
    ['4 KiB (copied)', Buffer.alloc(4096, 7)],
    ['4 KiB + 1 (a Buffer of its own)', Buffer.alloc(4097, 9)],
    ['32 KiB (a Buffer of its own)', Buffer.alloc(32768, 3)],
    ['32 KiB + 1 (zero-copy)', Buffer.alloc(32769, 5)],
    ['1 MiB', Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 31) & 0xff))],
    ['binary with NUL bytes', Buffer.from([0, 1, 0, 255, 0, 0, 42, 0])],
  ])('echoes %s exactly', async (_label, request) => {
    const answer = await echo.call(request);
    expect(Buffer.isBuffer(answer)).toBe(true);
    expect(answer.equals(request)).toBe(true);
  });

  it("answers with ordinary Buffers (views of the chunk, made with Node's own Buffer class)", async () => {
    const requests = Array.from({ length: 300 }, (_, i) => Buffer.alloc(4096, i & 0xff));
    const answers = await Promise.all(requests.map(request => echo.call(request)));
    for (const [i, answer] of answers.entries()) {
      expect(Object.getPrototypeOf(answer)).toBe(Buffer.prototype);
      expect(answer).toBeInstanceOf(Buffer);
      expect(answer.constructor).toBe(Buffer);
      expect(answer.equals(requests[i])).toBe(true);
      const tail = answer.subarray(4000);
      expect(Buffer.isBuffer(tail)).toBe(true);
      expect(tail.length).toBe(96);
      expect(tail.every(byte => byte === (i & 0xff))).toBe(true);
    }
    // Later answers (the same slabs reused or new ones) leave these intact.
    await Promise.all(requests.map(request => echo.call(Buffer.alloc(request.length, 0xee))));
    expect(answers.every((answer, i) => answer.equals(requests[i]))).toBe(true);
  });

  it('sends strings as UTF-8 and Uint8Array as bytes', async () => {
    expect((await echo.call('héllo ✓')).toString('utf8')).toBe('héllo ✓');
    expect([...(await echo.call(new Uint8Array([1, 2, 3])))]).toEqual([1, 2, 3]);
  });

  it('keeps answers of one batch apart (many small answers share an arena)', async () => {
    const requests = Array.from({ length: 2000 }, (_, i) => `request-${i}-${'z'.repeat(i % 50)}`);
    const answers = await Promise.all(requests.map(request => echo.call(request)));
    expect(answers.map(answer => answer.toString())).toEqual(requests);
  });

  it('answers 100k calls in flight with maxQueue raised', async () => {
    const wide = load(fixture('echo'), { cfg: 'threads=2;wide', maxQueue: 200_000, name: 'wide' });
    const count = 100_000;
    const calls: Promise<Buffer>[] = [];
    for (let i = 0; i < count; i++) calls.push(wide.call(String(i)));
    expect(wide.stats().inFlight).toBeGreaterThan(0);
    const answers = await Promise.all(calls);
    for (let i = 0; i < count; i += 997) expect(answers[i].toString()).toBe(String(i));
    expect(answers.every((answer, i) => answer.length === String(i).length)).toBe(true);
    expect(wide.stats()).toMatchObject({ inFlight: 0, answered: count, failed: 0 });
  }, 60_000);

  it('does real work on several poll threads', async () => {
    const { runtime } = gate(3);
    const inputs = Array.from({ length: 12 }, (_, i) => `data-${i}`);
    const hashes = await Promise.all(inputs.map(input => runtime.call(`hash:2000:${input}`)));
    expect(hashes.map(hash => hash.toString())).toEqual(inputs.map(input => fnv1a(input, 2000)));
  });
});

describe('NativeRuntime: the first-generation ABI and answer forms', () => {
  let cases: NativeRuntime;
  /** What the runtime warned about (asserted where a case expects a warning). */
  const warnings: string[] = [];
  beforeAll(() => {
    cases = load(fixture('cases'), {
      cfg: 'the cfg',
      name: 'cases',
      logger: {
        log: () => undefined,
        warn: message => warnings.push(message),
        error: message => warnings.push(message),
      },
    });
  });

  it('rejects rc != 0 with NativeRuntimeError carrying rc and the message', async () => {
    const error: NativeRuntimeError = await cases.call('fail:7:disk on fire').catch(e => e);
    expect(error).toBeInstanceOf(NativeRuntimeError);
    expect(error.rc).toBe(7);
    expect(error.message).toBe('runtime "cases" failed with rc 7: disk on fire');
    expect(error.response.toString()).toBe('disk on fire');
    const negative: NativeRuntimeError = await cases.call('fail:-1:').catch(e => e);
    expect(negative.rc).toBe(-1);
    expect(negative.message).toBe('runtime "cases" failed with rc -1');
  });

  it('resolves a NULL answer as an empty Buffer', async () => {
    const answer = await cases.call('null');
    expect(answer.length).toBe(0);
  });

  it('reads rsp_len 0 with a non-NULL rsp as a NUL-terminated string', async () => {
    expect((await cases.call('cstr:zero terminated')).toString()).toBe('zero terminated');
    expect((await cases.call('cstr:')).length).toBe(0);
  });

  it('hands large answers over as they are', async () => {
    const answer = await cases.call('big:100000');
    expect(answer.length).toBe(100_000);
    expect(answer.subarray(0, 28).toString()).toBe('abcdefghijklmnopqrstuvwxyzab');
  });

  it('passes cfg to init as a copy (NULL without cfg)', async () => {
    expect((await cases.call('cfg')).toString()).toBe('the cfg');
    const withoutCfg = load(fixture('cases'), { name: 'no-cfg' });
    expect((await withoutCfg.call('cfg')).toString()).toBe('(null)');
  });

  it('refuses to poll a queue that is not one of its own, naming the pointer on stderr', async () => {
    // In a process of its own: the host reports the misuse on fd 2.
    const { result, stderr } = await runProbe<{ answer: string }>({
      call: { lib: fixture('cases'), name: 'cases', request: 'foreign' },
    });
    expect(result).toEqual({ answer: 'refused' });
    expect(stderr).toMatch(
      /^ffi foreign-pointer: task_poll called with 0x[0-9a-f]+, which is not a queue or task of this host .*\[fn=task_poll\]$/m,
    );
  });

  it("zeroLength 'empty': 10,000 answers of malloc(0) with rsp_len 0 are 10,000 empty answers", async () => {
    const zero = load(fixture('cases'), { cfg: 'zero-length empty', zeroLength: 'empty' });
    const answers: Buffer[] = [];
    for (let round = 0; round < 10; round++) {
      answers.push(...(await Promise.all(Array.from({ length: 1000 }, () => zero.call('zero')))));
    }
    expect(answers).toHaveLength(10_000);
    expect(answers.filter(answer => answer.length > 0)).toEqual([]);
    expect(zero.stats()).toMatchObject({ answered: 10_000, unterminated: 0 });
    // Explicit lengths and NULL read as before.
    expect((await zero.call('echo me')).toString()).toBe('echo me');
    expect((await zero.call('null')).length).toBe(0);
  });

  it("zeroLength 'cstring' never reads past the block: no NUL in it is an empty answer, counted", async () => {
    const answer = await cases.call('unterminated');
    expect(answer.length).toBe(0);
    expect(cases.stats().unterminated).toBe(1);
    expect(warnings).toEqual([
      expect.stringMatching(/runtime "cases" answered rsp_len 0 with no NUL within the block/),
    ]);
    expect((await cases.call('cstr:still read as C strings')).toString()).toBe(
      'still read as C strings',
    );
  });

  it('refuses to share a runtime with another zeroLength', () => {
    expect(() => load(fixture('cases'), { cfg: 'the cfg', zeroLength: 'empty' })).toThrow(
      /zeroLength 'cstring'/,
    );
  });
});

describe('NativeRuntime: pollers spin before they sleep (pollerSpinUs)', () => {
  const multiCpu = os.availableParallelism() > 1; // its affinity, as the host counts

  it('with pollerSpinUs 0, an idle poller never spins', async () => {
    const runtime = load(fixture('echo'), {
      cfg: `threads=1;${uniqueName('nospin')}`,
      pollerSpinUs: 0,
    });
    for (let i = 0; i < 500; i++) expect((await runtime.call(`n${i}`)).toString()).toBe(`n${i}`);
    expect(runtime.stats()).toMatchObject({ pollerSpinUs: 0, pollerSpins: 0, pollerSpinHits: 0 });
  });

  (multiCpu ? it : it.skip)(
    'calls one at a time find the poller spinning: answered without a sleep, every answer right',
    async () => {
      const runtime = load(fixture('echo'), {
        cfg: `threads=1;${uniqueName('spin')}`,
        pollerSpinUs: 1_000_000,
      });
      expect(runtime.stats().pollerSpinUs).toBe(1_000_000);
      // One call at a time, each a timer tick after the last answer: the
      // poller is back in task_poll and finds the queue empty every time (a
      // spin needs about one task per wait), and waits of a few ms are short
      // against a 1 s bound.
      for (let i = 0; i < 300; i++) {
        expect((await runtime.call(`s${i}`)).toString()).toBe(`s${i}`);
        await new Promise(resolve => setTimeout(resolve, 1));
      }
      const stats = runtime.stats();
      expect(stats.pollerSpinHits).toBeGreaterThan(0);
      expect(stats.pollerSpinHits).toBeLessThanOrEqual(stats.pollerSpins);
      expect(stats).toMatchObject({ answered: 300, failed: 0 });
    },
  );

  (multiCpu ? it : it.skip)(
    'unload reaches a spinning poller: it gets NULL and exits',
    async () => {
      const log = path.join(logDir, `${uniqueName('spin-gate')}.log`);
      const runtime = load(fixture('gate'), {
        cfg: `threads=1;log=${log}`,
        name: 'spin-gate',
        pollerSpinUs: 1_000_000,
      });
      // Calls one at a time, paced as above: the poller spins when it is idle.
      for (let i = 0; i < 50; i++) {
        await runtime.call('hash:1:x');
        await new Promise(resolve => setTimeout(resolve, 1));
      }
      runtime.close(); // right after an answer: the poller is most likely spinning
      await waitFor(() => exits(log) === 1);
    },
  );

  const taskset = spawnSync('taskset', ['--version']).status === 0;
  (taskset ? it : it.skip)('never spins in a process allowed one CPU only (taskset -c 0)', () => {
    const probe = spawnSync(
      'taskset',
      [
        '-c',
        '0',
        process.execPath,
        '--import',
        path.join(ROOT, 'scripts', 'register-ts.mjs'),
        path.join(ROOT, 'test', 'fixtures', 'ffi', 'spin-probe.ts'),
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(probe.stdout).toMatch(/^RESULT 0$/m);
  });

  it('defaults to 50 µs (0 when the process may use one CPU only) and refuses to share a runtime with another bound', () => {
    const cfg = `threads=1;${uniqueName('default-spin')}`;
    const runtime = load(fixture('echo'), { cfg });
    expect(runtime.stats().pollerSpinUs).toBe(multiCpu ? 50 : 0);
    expect(() => load(fixture('echo'), { cfg, pollerSpinUs: 10 })).toThrow(
      /already loaded with pollerSpinUs 50; cannot share it with 10/,
    );
  });
});

describe('NativeRuntime: queue, loop, timeouts', () => {
  it('rejects with QueueFullError beyond maxQueue when the pollers are busy', async () => {
    const { control } = gate(1, ';full');
    const small = load(fixture('gate'), {
      cfg: `threads=2;${uniqueName('small')}`,
      maxQueue: 3,
      name: 'small',
    });
    await control.call('shut');
    const held = [small.call('hold'), small.call('hold')];
    await allPollersBusy(small);
    const queued = [small.call('a'), small.call('b'), small.call('c')];
    const refused = await small.call('d').catch(e => e);
    expect(refused).toBeInstanceOf(QueueFullError);
    expect(refused.limit).toBe(3);
    expect(small.stats()).toMatchObject({ queued: 3, refusedFull: 1 });
    await control.call('open');
    expect((await Promise.all([...held, ...queued])).map(b => b.toString())).toEqual([
      'held',
      'held',
      'a',
      'b',
      'c',
    ]);
  });

  it('counts idle pollers as extra capacity, as the original does', async () => {
    const { control } = gate(1, ';idle-capacity');
    const small = load(fixture('gate'), {
      cfg: `threads=2;${uniqueName('idle')}`,
      maxQueue: 2,
      name: 'idle',
    });
    await control.call('shut');
    await waitFor(() => small.stats().idlePollers === 2);
    // Issued while an answer is being delivered, the calls are posted together
    // afterwards, so no poller takes one before the count is made.
    const outcomes = await control
      .call('echo')
      .then(() =>
        Array.from({ length: 5 }, () => small.call('hold').then(String, (e: Error) => e)),
      );
    await control.call('open');
    const settled = await Promise.all(outcomes);
    expect(settled.slice(0, 4)).toEqual(['held', 'held', 'held', 'held']);
    expect(settled[4]).toBeInstanceOf(QueueFullError);
  });

  it('keeps the loop free: a blocked call completes only after JS issued the releasing call', async () => {
    const { runtime, control } = gate(2);
    await control.call('shut');
    let heldSettled = false;
    const held = runtime.call('hold').then(answer => {
      heldSettled = true;
      return answer.toString();
    });
    // Timers keep firing while a runtime thread sits in the call: the loop is free.
    await waitFor(() => runtime.stats().idlePollers === 1 && runtime.stats().queued === 0);
    expect(heldSettled).toBe(false);
    const opened = await runtime.call('open');
    expect(opened.toString()).toBe('opened');
    expect(await held).toBe('held');
  });

  it('times out, frees the late answer when it arrives, and reuses the slot', async () => {
    const { runtime, control } = gate(2);
    await control.call('shut');
    const error = await runtime.call('hold', { timeoutMs: 30 }).catch(e => e);
    expect(error).toBeInstanceOf(NativeCallTimeoutError);
    expect(runtime.stats()).toMatchObject({ inFlight: 0, timedOut: 1, late: 0 });
    await control.call('open');
    await waitFor(() => runtime.stats().late === 1);
    expect((await runtime.call('after')).toString()).toBe('after');
    expect(runtime.stats()).toMatchObject({ answered: 1, late: 1 });
  });

  it('rejects with the abort reason and ignores the late answer', async () => {
    const { runtime, control } = gate(1);
    await control.call('shut');
    const controller = new AbortController();
    const pending = runtime.call('hold', { signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');
    const preAborted = await runtime.call('x', { signal: controller.signal }).catch(e => e);
    expect(preAborted.message).toBe('caller gave up');
    await control.call('open');
    await waitFor(() => runtime.stats().late === 1);
  });
});

describe('NativeRuntime: unload', () => {
  it('rejects queued calls, releases every poll thread, answers calls already taken', async () => {
    const { runtime, control, log } = gate(3);
    await control.call('shut');
    const held = [runtime.call('hold'), runtime.call('hold')];
    await waitFor(() => runtime.stats().idlePollers === 1 && runtime.stats().queued === 0);
    // One poller idle: it takes one more; the rest stay queued.
    const more = [runtime.call('q1'), runtime.call('hold'), runtime.call('q3'), runtime.call('q4')];
    const settled = more.map(call => call.then(String, (e: Error) => e));
    await waitFor(() => runtime.stats().queued === 2);
    runtime.close();
    // more[1] is held by a poller: it still gets its answer after the gate opens.
    const outcomes = await Promise.all([settled[0], settled[2], settled[3]]);
    expect(outcomes[0]).toBe('q1');
    expect(outcomes.slice(1).every(o => o instanceof RuntimeUnloadedError)).toBe(true);
    expect(runtime.stats()).toMatchObject({ queued: 0, inFlight: 3, unloaded: true });
    expect(exits(log)).toBe(0);
    await control.call('open');
    expect((await Promise.all([...held, more[1]])).map(String)).toEqual(['held', 'held', 'held']);
    await waitFor(() => exits(log) === 3, { message: 'all three poll threads got NULL' });
    expect(runtime.stats().inFlight).toBe(0);
  });

  it('releases idle poll threads at unload', async () => {
    const log = path.join(os.tmpdir(), `${uniqueName('herald-idle')}.log`);
    const runtime = NativeRuntime.load(fixture('gate'), { cfg: `threads=4;log=${log}` });
    await waitFor(() => runtime.stats().idlePollers === 4);
    runtime.close();
    await waitFor(() => exits(log) === 4);
    expect(runtime.stats().idlePollers).toBe(0);
    rmSync(log, { force: true });
  });

  it('rejects calls after unload and refuses to initialise the same runtime again', async () => {
    const cfg = `threads=1;${uniqueName('once')}`;
    const runtime = NativeRuntime.load(fixture('gate'), { cfg, name: 'once' });
    const second = NativeRuntime.load(fixture('gate'), { cfg, name: 'once' });
    expect(runtime.stats().references).toBe(2);
    runtime.close();
    expect((await second.call('still loaded')).toString()).toBe('still loaded');
    second.close();
    await expect(runtime.call('x')).rejects.toBeInstanceOf(RuntimeUnloadedError);
    await expect(second.call('x')).rejects.toBeInstanceOf(RuntimeUnloadedError);
    expect(() => NativeRuntime.load(fixture('gate'), { cfg })).toThrow(
      /cannot be initialised again/,
    );
  });
});

describe('NativeRuntime: loading', () => {
  const savedPath = process.env.LD_LIBRARY_PATH;
  afterEach(() => {
    if (savedPath === undefined) delete process.env.LD_LIBRARY_PATH;
    else process.env.LD_LIBRARY_PATH = savedPath;
  });

  it('finds a library by path, file name or short name on LD_LIBRARY_PATH, and shares one runtime', async () => {
    process.env.LD_LIBRARY_PATH = `/nonexistent:${FIXTURE_DIR}`;
    const byPath = load(fixture('echo'), { cfg: 'threads=1;shared' });
    const byFile = load('libherald_echo.so', { cfg: 'threads=1;shared' });
    const byShortName = load('herald_echo', { cfg: 'threads=1;shared' });
    const relative = load(path.relative(process.cwd(), fixture('echo')), {
      cfg: 'threads=1;shared',
    });
    expect(byShortName.path).toBe(byPath.path);
    expect(byFile.stats().references).toBe(4);
    expect((await relative.call('via relative path')).toString()).toBe('via relative path');
  });

  it('reports a missing library with NativeLibraryError', () => {
    process.env.LD_LIBRARY_PATH = FIXTURE_DIR;
    expect(() => NativeRuntime.load('herald_nope')).toThrow(NativeLibraryError);
    expect(() => NativeRuntime.load('/nonexistent/libx.so')).toThrow(
      /cannot load native runtime library/,
    );
  });

  it('reports a failing init with its rc, and a library without init', () => {
    const failed = (() => {
      try {
        NativeRuntime.load(fixture('cases'), { cfg: 'fail=5' });
      } catch (error) {
        return error as NativeInitError;
      }
    })();
    expect(failed).toBeInstanceOf(NativeInitError);
    expect(failed!.rc).toBe(5);
    expect(() => NativeRuntime.load(fixture('noinit'))).toThrow(
      /exports neither libffi_init nor lib_nonblocking_ffi_init/,
    );
  });

  it('refuses bad options and requests at the boundary', async () => {
    expect(() => NativeRuntime.load('')).toThrow(InvalidOptionsError);
    expect(() => NativeRuntime.load(fixture('echo'), { maxQueue: 0 })).toThrow(InvalidOptionsError);
    expect(() => NativeRuntime.load(fixture('echo'), { cfg: 'a\0b' })).toThrow(InvalidOptionsError);
    const echo = load(fixture('echo'), { cfg: 'threads=1;bad-input' });
    expect(() =>
      NativeRuntime.load(fixture('echo'), { cfg: 'threads=1;bad-input', maxQueue: 5 }),
    ).toThrow(/already loaded/);
    await expect(echo.call(42 as unknown as string)).rejects.toBeInstanceOf(
      InvalidNativeRequestError,
    );
    await expect(echo.call('x', { timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidOptionsError);
    expect((await echo.call('still fine')).toString()).toBe('still fine');
  });

  it('serves a runtime loaded by a second copy of the addon in the same process', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-addon-copy-'));
    const copy = path.join(dir, 'herald_ffi.node');
    copyFileSync(addonPath(), copy);
    const second = createRequire(__filename)(copy) as HeraldFfiAddon;
    const meta = new Int32Array(16);
    const answers: string[] = [];
    second.setup((count, arena) => {
      for (let i = 0; i < count; i++)
        answers.push(
          // The chunk's bytes: a view of the slab (not a Buffer: the
          // table makes the answers' Buffers over its ArrayBuffer).
          Buffer.from(
            arena!.buffer,
            arena!.byteOffset + meta[i * 4 + 2],
            meta[i * 4 + 3],
          ).toString(),
        );
    }, meta);
    // The runtime's host symbols are bound to the first copy, which must hand
    // this queue to the second copy's code.
    const result = second.load(
      fixture('echo'),
      `threads=1;${uniqueName('copy')}`,
      16,
      false,
      0,
      50,
    );
    if (!result.ok) throw new Error(result.message);
    expect(second.submit(result.id, 0, 'through the second copy')).toBe(0);
    await waitFor(() => answers.length === 1);
    second.unload(result.id);
    expect(answers).toEqual(['through the second copy']);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('withMethods', () => {
  it('turns any other name into a call and leaves then, hooks, toJSON, inspect and symbols alone', async () => {
    const runtime = withMethods(
      load(fixture('echo'), { cfg: `threads=1;${uniqueName('methods')}`, name: 'sugar' }),
    );
    expect((await runtime.produce('via a name')).toString()).toBe('via a name');
    expect((await runtime.call('via call')).toString()).toBe('via call');
    expect(runtime.produce).toBe(runtime.produce);
    for (const name of [
      'then',
      'onModuleInit',
      'onApplicationShutdown',
      'toJSON',
      'inspect',
      'asymmetricMatch',
    ]) {
      expect(runtime[name]).toBeUndefined();
    }
    expect((runtime as unknown as Record<symbol, unknown>)[Symbol.iterator]).toBeUndefined();
    // Awaiting it gives the runtime itself, not a call.
    expect(await runtime).toBe(runtime);
    expect(runtime.name).toBe('sugar');
    expect(runtime.stats().answered).toBe(2);
    runtime.close();
    expect(runtime.closed).toBe(true);
  });
});
