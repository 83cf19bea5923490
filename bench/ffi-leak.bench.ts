// npm run bench:ffi-leak — a leak check of the FFI call path: RSS after
// gc() at 1M calls minus RSS after gc() at 100k calls must stay under
// 32 MiB, for answers copied into the shared slabs (64 B), copied into a
// Buffer of their own (8 KiB) and handed over without a copy as external
// buffers (64 KiB > zeroCopyMin; a fifth of the calls, 200k, mark at 20k).
// Calls run 256 in flight against the C echo runtime. Exits 1 when a mode
// is over. FFI_LEAK_CALLS=<n> changes the 1M (the mark stays a tenth).
// BENCH_SMOKE=1 (CI runs every bench so) makes 20k calls: it checks the
// check runs and every call is answered; a leak needs the full 1M to show,
// so the smoke prints the RSS growth without judging it. (It did judge it,
// and failed at times with no leak: 4,000 zero-copy calls marked at 400
// span V8's first full GCs of external memory, one per 64 MiB, and the
// runtime's malloc arena keeps that high-water mark resident after gc():
// 63.5 MiB of growth. The full run marks at 20k calls, past it.)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeRuntime } from '../lib/ffi/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ECHO = path.join(ROOT, 'test', 'fixtures', 'ffi', 'build', 'libherald_echo.so');
const SMOKE = process.env.BENCH_SMOKE === '1';
const TOTAL = Number(process.env.FFI_LEAK_CALLS ?? (SMOKE ? 20_000 : 1_000_000));
const IN_FLIGHT = 256;
const LIMIT = 32 * 1024 * 1024;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('bench:ffi-leak needs --expose-gc (npm run bench:ffi-leak passes it)');
  process.exit(1);
}

/** RSS once garbage, and the external answers it frees in finalizers, are gone. */
async function settledRss(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise(resolve => setImmediate(resolve));
  }
  return process.memoryUsage().rss;
}

async function calls(
  runtime: NativeRuntime,
  request: Buffer,
  from: number,
  to: number,
): Promise<void> {
  let next = from;
  const caller = async (): Promise<void> => {
    while (next < to) {
      next++;
      const answer = await runtime.call(request);
      if (answer.length !== request.length) throw new Error(`answered ${answer.length} bytes`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, caller));
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function mode(name: string, size: number, total = TOTAL): Promise<boolean> {
  const mark = Math.floor(total / 10);
  const runtime = NativeRuntime.load(ECHO, { cfg: `threads=2;leak-${name}`, name });
  const request = Buffer.alloc(size, 0x61);
  const started = performance.now();
  await calls(runtime, request, 0, mark);
  const atMark = await settledRss();
  await calls(runtime, request, mark, total);
  const atEnd = await settledRss();
  const seconds = (performance.now() - started) / 1000;
  const stats = runtime.stats();
  runtime.close();
  const growth = atEnd - atMark;
  const answered = stats.answered === total && stats.inFlight === 0;
  const ok = answered && (SMOKE || growth < LIMIT);
  const verdict = SMOKE ? 'not judged (BENCH_SMOKE)' : growth < LIMIT ? 'ok' : 'OVER';
  console.log(
    `${name.padEnd(9)} ${String(size).padStart(5)} B: RSS ${mib(atMark)} at ${mark} calls, ` +
      `${mib(atEnd)} at ${total}: growth ${mib(growth)} (limit ${mib(LIMIT)}) ` +
      `${verdict}  [${Math.round(total / seconds)} calls/s, answered ${stats.answered}]`,
  );
  return ok;
}

const results = [
  await mode('copied', 64),
  await mode('own', 8192),
  // A fifth of the calls: 64 KiB answers are slow to push through.
  await mode('zero-copy', 65536, Math.floor(TOTAL / 5)),
];
if (results.includes(false)) {
  console.error(
    SMOKE
      ? 'bench:ffi-leak: not every call was answered'
      : 'bench:ffi-leak: RSS grew past the limit, or not every call was answered',
  );
  process.exit(1);
}
console.log(
  `bench:ffi-leak: no leak${SMOKE ? ' (BENCH_SMOKE: 20k calls, too few to show a leak; RSS growth not judged)' : ''}`,
);
