// Type tests (issue 27): test/types/*.ts hold what typed events must accept
// and, under `@ts-expect-error`, what they must refuse; tsc fails on a
// refusal that stopped being an error as well as on an acceptance that broke.
import { execFile } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

it('typed events: the catalog checks hold (tsc over test/types)', async () => {
  const output = await new Promise<string>(resolve => {
    execFile(
      process.execPath,
      [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'test/types/tsconfig.json'],
      { cwd: root },
      (error, stdout, stderr) => resolve(error ? stdout + stderr || String(error) : ''),
    );
  });
  expect(output).toBe('');
}, 120_000);
