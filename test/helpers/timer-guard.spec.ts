import { spawn } from 'node:child_process';
import path from 'node:path';
import { ChildHandle, ROOT } from './processes.js';

// The project's Jest environment (test/helpers/timer-guard-environment.cjs)
// fails a test file that leaves a ref'ed timer pending: issue 13's "A worker
// process has failed to exit gracefully" was one such timer. Two case files
// run in a Jest of their own with the project config.

const JEST = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
const CASES = path.join(ROOT, 'test', 'fixtures', 'timer-guard');

// eslint-disable-next-line @typescript-eslint/no-require-imports
const projectConfig = require(path.join(ROOT, 'jest.config.cjs')) as Record<string, unknown>;

async function runCases(): Promise<{ code: number | null; output: string }> {
  const config = {
    ...projectConfig,
    rootDir: CASES,
    roots: [CASES],
    testMatch: ['**/*.case.ts'],
    reporters: ['default'],
    // Jest runs files it knows to be fast in its own process; a memory limit
    // (never reached) makes it use workers, whose end is what is checked.
    workerIdleMemoryLimit: '4GB',
  };
  const child = new ChildHandle(
    spawn(process.execPath, [JEST, '--config', JSON.stringify(config), '--ci'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const { code } = await child.exited;
  await child.closed;
  return { code, output: child.lines.join('\n') };
}

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
