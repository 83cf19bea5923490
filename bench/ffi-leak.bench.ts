// npm run bench:ffi-leak — a leak check of the FFI call path: RSS after gc()
// at FFI_LEAK_CALLS/10 calls (the end of the first round) against RSS after
// gc() at FFI_LEAK_CALLS calls (default 1M; the end of the tenth) must grow by
// less than 32 MiB, for answers copied into the shared arena (64 B) and for
// answers handed over without a copy as external buffers (8 KiB > copyMax).
// Calls run 256 in flight against the C echo runtime, in ten rounds of a tenth
// of the calls (bench/harness: calls/s and CPU per call). The two modes run one
// after the other, not interleaved: RSS is the process's, so only then does
// each growth belong to one mode, and nothing compares them. Exits 1 when RSS
// grew past the limit. No peer: the last line is the verdict.
// FFI_LEAK_CALLS=<n>, BENCH_SMOKE=1.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeRuntime } from '../lib/ffi/index.js';
import { runBench, runMain, setting } from './harness/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ECHO = path.join(ROOT, 'test', 'fixtures', 'ffi', 'build', 'libherald_echo.so');
const TOTAL = setting('FFI_LEAK_CALLS', 1_000_000, 20_000);
/** The first round ends at the mark; every round makes as many calls. */
const ROUNDS = 10;
const PER_ROUND = Math.floor(TOTAL / ROUNDS);
const IN_FLIGHT = 256;
const LIMIT = 32 * 1024 * 1024;
const COPY_MAX = 4096;

const gc = (globalThis as { gc?: () => void }).gc;

/** RSS once garbage, and the external answers it frees in finalizers, are gone. */
async function settledRss(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise(resolve => setImmediate(resolve));
  }
  return process.memoryUsage().rss;
}

async function calls(runtime: NativeRuntime, request: Buffer, count: number): Promise<void> {
  let next = 0;
  const caller = async (): Promise<void> => {
    while (next < count) {
      next++;
      const answer = await runtime.call(request);
      if (answer.length !== request.length) throw new Error(`answered ${answer.length} bytes`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, caller));
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** One mode's ten rounds; what went wrong, if anything. */
async function mode(name: string, size: number): Promise<string[]> {
  const runtime = NativeRuntime.load(ECHO, { cfg: `threads=2;leak-${name}`, name });
  const request = Buffer.alloc(size, 0x61);
  let atMark = 0;
  let atEnd = 0;
  try {
    await runBench({
      title: `bench:ffi-leak ${name}`,
      description: `${TOTAL} calls of ${size} B in ${ROUNDS} rounds, ${IN_FLIGHT} in flight; RSS after gc() at the end of round 1 and of round ${ROUNDS} must differ by less than ${mib(LIMIT)}`,
      unit: 'calls',
      rounds: ROUNDS,
      variants: [
        {
          name: `${name} ${size} B`,
          setup: async () => ({
            run: async () => {
              await calls(runtime, request, PER_ROUND);
              return { events: PER_ROUND };
            },
          }),
        },
      ],
      comparisons: [],
      async afterRound(round) {
        if (round === 1) atMark = await settledRss();
        if (round === ROUNDS) atEnd = await settledRss();
      },
    });
  } finally {
    runtime.close();
  }
  const failures: string[] = [];
  const stats = runtime.stats();
  if (stats.answered !== ROUNDS * PER_ROUND || stats.inFlight !== 0)
    failures.push(
      `${name}: answered ${stats.answered} of ${ROUNDS * PER_ROUND}, ${stats.inFlight} in flight`,
    );
  const growth = atEnd - atMark;
  const verdict = growth < LIMIT ? 'ok' : 'OVER';
  console.log(
    `${name} ${size} B: RSS ${mib(atMark)} at ${PER_ROUND} calls, ${mib(atEnd)} at ${ROUNDS * PER_ROUND}: growth ${mib(growth)} (limit ${mib(LIMIT)}) ${verdict}\n`,
  );
  if (growth >= LIMIT) failures.push(`${name}: RSS grew by ${mib(growth)}, past ${mib(LIMIT)}`);
  return failures;
}

runMain('bench:ffi-leak', async () => {
  if (!gc) throw new Error('bench:ffi-leak needs --expose-gc (npm run bench:ffi-leak passes it)');
  const failures = [...(await mode('copied', 64)), ...(await mode('zero-copy', COPY_MAX * 2))];
  if (failures.length > 0) throw new Error(`bench:ffi-leak: ${failures.join('; ')}`);
  console.log('bench:ffi-leak: no leak');
});
