import path from 'node:path';
import { FIXTURE_DIR, buildNative } from './ffi-fixtures.js';
import { buildRuntimes, runtimeCases } from './language-runtimes.js';

// Decided before the tests are declared, so a machine without Go shows a
// visibly skipped test that says why, never a silent pass.
buildNative();
const go = buildRuntimes('go').go;

// test/fixtures/ffi/go/echo.go, `go build -buildmode=c-shared`. This file
// loads one Go runtime only: two Go c-shared libraries cannot share a process.
if (go.absent) {
  console.warn(
    'go-runtime.spec: NO GO TOOLCHAIN ON PATH: the Go runtime is NOT built or tested on this machine',
  );
  describe('Go runtime through FfiModule', () => {
    it.skip('NOT TESTED: no Go toolchain on PATH (install Go to build and test the Go runtime)', () => {
      // Skipped on purpose: Jest lists it as skipped, with the reason in its name.
    });
  });
} else {
  runtimeCases({
    label: 'Go',
    lib: () => path.join(FIXTURE_DIR, 'libherald_go_echo.so'),
    cfg: unique => `threads=2;${unique}`,
    cfgAnswer: unique => `threads=2;${unique}`,
    failingCfg: 'fail=6',
    failingRc: 6,
  });
}
