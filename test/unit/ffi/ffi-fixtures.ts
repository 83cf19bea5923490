import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../helpers/processes.js';

/** Where scripts/build-native.mjs puts the C test runtimes of test/fixtures/ffi. */
export const FIXTURE_DIR = path.join(ROOT, 'test', 'fixtures', 'ffi', 'build');

/** The real compiled library of test/fixtures/ffi/<name>.c. */
export function fixture(
  name:
    'echo' | 'cases' | 'gate' | 'noinit' | 'plain_echo' | 'needs_global' | 'needs_global_plugin',
): string {
  return path.join(FIXTURE_DIR, `libherald_${name}.so`);
}

/** Builds the addon and the test runtimes if a source changed (fast when not). */
export function buildNative(): void {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-native.mjs')], {
    stdio: 'inherit',
  });
}
