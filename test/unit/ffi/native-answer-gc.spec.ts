import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../helpers/processes.js';
import { buildNative } from './ffi-fixtures.js';

// lib/ffi/native/host.cc (LetV8ScavengeAnswers): zero-copy answers (over
// zeroCopyMin) that JS drops are reclaimed by scavenges, not full GCs.
// Without the host's hint V8 ran a mark-compact per 64 MiB of them and no
// scavenge (400 MiB of 100 KiB answers: 5-6 full GCs, 0 scavenges); with
// it, a scavenge per 32 MiB of young backing stores and no full GC. Counted,
// not timed, in a process of its own (test/fixtures/ffi/answer-gc-probe.ts):
// jest's own heap starts full GCs of its own at times.

beforeAll(() => buildNative(), 120_000);

interface Counts {
  full: number;
  scavenges: number;
  hints: number;
  answers: number;
}

function probe(size: number, inFlight: number, count: number): Counts {
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      path.join(ROOT, 'scripts', 'register-ts.mjs'),
      path.join(ROOT, 'test', 'fixtures', 'ffi', 'answer-gc-probe.ts'),
      String(size),
      String(inFlight),
      String(count),
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  const line = /^RESULT (.*)$/m.exec(run.stdout);
  if (!line) throw new Error(`answer-gc-probe failed (${run.status}): ${run.stderr}`);
  return JSON.parse(line[1]) as Counts;
}

describe('FFI host: dropped zero-copy answers are reclaimed by scavenges, not full GCs', () => {
  it.each([
    ['1 in flight', 1],
    ['64 in flight', 64],
  ])(
    '400 MiB of 100 KiB answers, %s: scavenges, at most two full GCs (5-6 without the hint)',
    (_label, inFlight) => {
      const counts = probe(100 * 1024, inFlight, 4000);
      expect(counts.answers).toBe(4000);
      expect(counts.hints).toBeGreaterThan(0);
      expect(counts.scavenges).toBeGreaterThanOrEqual(6);
      expect(counts.full).toBeLessThanOrEqual(2);
    },
    120_000,
  );
});
