import path from 'node:path';
import { projectConfig, runJestCases } from './jest-cases.js';
import { ROOT } from './processes.js';

// The project's Jest environment (test/helpers/timer-guard-environment.cjs)
// fails a test file that leaves a ref'ed timer pending: issue 13's "A worker
// process has failed to exit gracefully" was one such timer. Two case files
// run in a Jest of their own with the project config.

const CASES = path.join(ROOT, 'test', 'fixtures', 'timer-guard');
const runCases = (): ReturnType<typeof runJestCases> => runJestCases(CASES);

describe('the timer guard of the Jest environment', () => {
  let run: { code: number | null; output: string };

  beforeAll(async () => {
    run = await runCases();
  }, 120_000);

  it('is the project config', () => {
    expect(projectConfig.testEnvironment).toMatch(/timer-guard-environment\.cjs$/);
  });

  it('fails the file that leaves a timeout and an interval, naming the lines that made them', () => {
    expect(run.code).toBe(1);
    expect(run.output).toMatch(/FAIL .*leaks\.case\.ts/);
    expect(run.output).toContain('2 timer(s) outlived this test file');
    expect(run.output).toMatch(
      /setTimeout\(…, 60000\) still pending and ref'ed, made\n\s+at .*leaks\.case\.ts:4:/,
    );
    expect(run.output).toMatch(
      /setInterval\(…, 100\) still pending and ref'ed, made\n\s+at .*leaks\.case\.ts:5:/,
    );
  });

  it('passes the file whose timers end, are cleared or unref’ed', () => {
    expect(run.output).toMatch(/PASS .*clean\.case\.ts/);
  });

  it('clears what it reported: the worker is not force exited', () => {
    expect(run.output).not.toContain('has been force exited');
  });
});
