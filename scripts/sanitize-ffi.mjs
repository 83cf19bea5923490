#!/usr/bin/env node
// The FFI host's queue and completion stack (lib/ffi/native/queue.h) under
// AddressSanitizer (+ LeakSanitizer, UBSan) and ThreadSanitizer, driven by
// the plain C++ harness test/fixtures/ffi/sanitize/queue_harness.cc (no
// Node, no valgrind). Each build must run clean; then each sanitizer must
// catch the defect the harness plants on request (--bug=leak under ASan,
// --bug=race under TSan), which proves it is really on. Exit 0 only if all
// of that holds. `npm run sanitize:ffi`; also run by the Jest suite.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const harness = path.join(root, 'test', 'fixtures', 'ffi', 'sanitize', 'queue_harness.cc');
const include = path.join(root, 'lib', 'ffi', 'native');
const cxx = process.env.CXX ?? 'g++';
const out = mkdtempSync(path.join(os.tmpdir(), 'herald-sanitize-'));

const sanitizers = [
  {
    name: 'asan',
    flags: ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined'],
    env: {
      ASAN_OPTIONS: 'detect_leaks=1:halt_on_error=1:abort_on_error=0',
      UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
    },
    bug: 'leak',
    report: 'ERROR: LeakSanitizer: detected memory leaks',
  },
  {
    name: 'tsan',
    flags: ['-fsanitize=thread'],
    env: { TSAN_OPTIONS: 'halt_on_error=1:second_deadlock_stack=1' },
    bug: 'race',
    report: 'WARNING: ThreadSanitizer: data race',
  },
];

let failed = false;
const fail = message => {
  failed = true;
  console.error(`sanitize-ffi: FAIL ${message}`);
};

try {
  for (const s of sanitizers) {
    const binary = path.join(out, `queue_harness_${s.name}`);
    const build = spawnSync(
      cxx,
      [
        '-std=c++17',
        '-g',
        '-O1',
        '-fno-omit-frame-pointer',
        ...s.flags,
        '-pthread',
        `-I${include}`,
        '-o',
        binary,
        harness,
      ],
      { encoding: 'utf8' },
    );
    if (build.error || build.status !== 0) {
      fail(
        `${s.name}: cannot build the harness with ${cxx}: ${build.error?.message ?? build.stderr}`,
      );
      continue;
    }
    const env = { ...process.env, ...s.env };
    const clean = spawnSync(binary, [], { encoding: 'utf8', env, timeout: 120_000 });
    const sanitizerReport = /(AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:)/.test(
      clean.stderr,
    );
    if (clean.status !== 0 || sanitizerReport || !clean.stdout.includes('queue harness: clean')) {
      fail(
        `${s.name}: the harness is not clean (exit ${clean.status ?? clean.signal})\n${clean.stdout}${clean.stderr}`,
      );
    } else {
      console.log(`sanitize-ffi: ${s.name} clean\n${clean.stdout.trim().replace(/^/gm, '  ')}`);
    }
    const planted = spawnSync(binary, [`--bug=${s.bug}`], {
      encoding: 'utf8',
      env,
      timeout: 120_000,
    });
    if (planted.status === 0 || !planted.stderr.includes(s.report)) {
      fail(
        `${s.name}: the planted ${s.bug} was not reported (exit ${planted.status}): is the sanitizer on?`,
      );
    } else {
      console.log(`sanitize-ffi: ${s.name} reports a planted ${s.bug} (self-check)`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
if (failed) process.exit(1);
console.log('sanitize-ffi: queue.h is clean under ASan+UBSan and TSan');
