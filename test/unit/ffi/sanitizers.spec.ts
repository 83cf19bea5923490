import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../helpers/processes.js';

// scripts/sanitize-ffi.mjs: queue.h in a plain C++ harness under ASan+UBSan
// and TSan (a few seconds). It also checks each sanitizer catches a planted
// defect, so a build where the sanitizer is silently off fails here.
it('queue and completion code: clean under ASan+UBSan and TSan, planted defects reported', () => {
  const run = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'sanitize-ffi.mjs')], {
    encoding: 'utf8',
    timeout: 180_000,
  });
  const output = `${run.stdout}${run.stderr}`;
  expect({ status: run.status, output }).toMatchObject({ status: 0 });
  expect(output).toContain('sanitize-ffi: asan clean');
  expect(output).toContain('sanitize-ffi: tsan clean');
  expect(output).toContain('sanitize-ffi: asan reports a planted leak (self-check)');
  expect(output).toContain('sanitize-ffi: tsan reports a planted race (self-check)');
}, 200_000);
