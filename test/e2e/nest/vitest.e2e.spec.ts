// nest-herald/testing under Vitest, Nest 12's default runner: runs
// test/vitest/*.vitest.ts with vitest.config.mts and checks it passed.
import { execFile } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '../../..');

it('the testing kit passes its Vitest spec', async () => {
  const result = await new Promise<{ code: number | null; output: string }>(resolve => {
    execFile(
      process.execPath,
      [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'vitest.config.mts'],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', CI: '1' } },
      (error, stdout, stderr) =>
        resolve({
          code: error ? ((error as { code?: number }).code ?? 1) : 0,
          output: stdout + stderr,
        }),
    );
  });
  expect(result.output).toMatch(/Tests\s+1 passed \(1\)/);
  expect(result.code).toBe(0);
}, 120_000);
