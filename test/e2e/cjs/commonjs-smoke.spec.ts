import { spawn } from 'node:child_process';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { ROOT } from '../../helpers/processes.js';

describe('CommonJS smoke test', () => {
  it('a CommonJS Nest app require()s the built package and boots', async () => {
    expect(existsSync(path.join(ROOT, 'dist/lib/index.js'))).toBe(true); // npm test builds first
    const child = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/cjs-app/main.cjs')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', chunk => (output += chunk));
    child.stderr.on('data', chunk => (output += chunk));
    const code = await new Promise(resolve => child.once('exit', resolve));
    expect(output).toContain('received {"from":"commonjs"}');
    expect(output).toContain('closed');
    expect(code).toBe(0);
  });
});
