import path from 'node:path';
import { projectConfig, runJestCases } from '../../helpers/jest-cases.js';
import { ROOT } from '../../helpers/processes.js';
import { buildNative } from './ffi-fixtures.js';

// Issue 13 point 5: `npm test` ended with Jest's "A worker process has failed
// to exit gracefully and has been force exited". Watching the workers
// (/proc/<pid>/task/*/stack from the moment their 'exit' event fired) showed
// no open handle, no runtime thread and no native wait: their JS was done
// within a millisecond of Jest's end message, and the main thread then spent
// about 0.5 s in munmap/mprotect freeing the heap (and the kernel more in
// exit_mmap), the same with or without an FFI suite in the worker. Jest
// SIGTERMs a worker that has not exited 500 ms after the end message; on a
// busy machine (load 12 on 2 cores) an ordinary teardown takes longer.
// jest.config.cjs gives workers workerGracefulExitTimeout: a worker that
// really leaks a handle is still reported, once that time is up. (The message
// that outlived it in the full suite was such a leak, a test's 60 s timer:
// test/helpers/timer-guard.spec.ts covers that.)
//
// Here a runtime (test/fixtures/ffi/slow-exit.c) makes the FFI worker take
// 1.5 s to end after its loop drained, the condition that produced the
// message, deterministically.

const CASES = path.join(ROOT, 'test', 'fixtures', 'ffi', 'jest-exit');
const FORCED = 'A worker process has failed to exit gracefully';

/** Runs the two case files in Jest workers; resolves with everything Jest printed. */
const runCases = (overrides: Record<string, unknown>): ReturnType<typeof runJestCases> =>
  runJestCases(CASES, overrides, { SLOW_EXIT_MS: '1500' });

beforeAll(() => buildNative(), 120_000);

describe('Jest workers that ran an FfiModule end without being forced', () => {
  it("with Jest's default 500 ms, a worker slow to end is force exited (the condition is reproduced)", async () => {
    const { code, output } = await runCases({ workerGracefulExitTimeout: 500 });
    expect(output).toMatch(/Tests:\s+2 passed, 2 total/);
    expect(code).toBe(0);
    expect(output).toContain(FORCED);
  }, 120_000);

  it('with the project config, three runs in a row never print the message', async () => {
    expect(projectConfig.workerGracefulExitTimeout).toBeGreaterThanOrEqual(5_000);
    for (let run = 0; run < 3; run++) {
      const { code, output } = await runCases({});
      expect(output).toMatch(/Tests:\s+2 passed, 2 total/);
      expect(code).toBe(0);
      expect(output).not.toContain(FORCED);
    }
  }, 240_000);
});
