import path from 'node:path';
import { FIXTURE_DIR, buildNative } from './ffi-fixtures.js';
import { buildRuntimes, runtimeCases } from './language-runtimes.js';

beforeAll(() => {
  buildNative();
  buildRuntimes('rust');
}, 120_000);

// test/fixtures/ffi/rust/echo.rs: no crates, answers malloc'ed C strings.
runtimeCases({
  label: 'Rust',
  lib: () => path.join(FIXTURE_DIR, 'libherald_rust_echo.so'),
  cfg: unique => `threads=2;${unique}`,
  cfgAnswer: unique => `threads=2;${unique}`,
  failingCfg: 'fail=5',
  failingRc: 5,
});
