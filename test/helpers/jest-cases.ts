import { spawn } from 'node:child_process';
import path from 'node:path';
import { ChildHandle, ROOT } from './processes.js';

const JEST = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const projectConfig = require(path.join(ROOT, 'jest.config.cjs')) as Record<string, unknown>;

/**
 * Runs the `*.case.ts` files of `dir` in a Jest of their own, in workers, with
 * the project config plus `overrides`; resolves with its exit code and
 * everything it printed. For tests of how Jest workers end.
 */
export async function runJestCases(
  dir: string,
  overrides: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; output: string }> {
  const config = {
    ...projectConfig,
    rootDir: dir,
    roots: [dir],
    testMatch: ['**/*.case.ts'],
    reporters: ['default'],
    // Jest runs files it knows to be fast in its own process; a memory limit
    // (never reached) makes it use workers, whose end is what is checked.
    workerIdleMemoryLimit: '4GB',
    ...overrides,
  };
  const child = new ChildHandle(
    spawn(process.execPath, [JEST, '--config', JSON.stringify(config), '--ci'], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const { code } = await child.exited;
  await child.closed;
  return { code, output: child.lines.join('\n') };
}
