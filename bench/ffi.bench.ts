// npm run bench:ffi — the FFI call path of nest-herald/ffi, three parts:
//
// 1. cost: main-thread CPU and page faults per call of the C echo runtime
//    (test/fixtures/ffi/echo.c, one poll thread) at 4 KiB with 64 and 1024
//    calls in flight: a discarded warm-up (per width, passes until the addon's slab
//    pool stops growing: the steady state is what is measured), then BENCH_COST_ROUNDS
//    (default 11) rounds of BENCH_COST_CALLS (default 100k) calls, 64 and 1024
//    interleaved within each round (which goes first alternates); median,
//    range and spread (max - min) / median over the rounds. Main-thread
//    CPU comes from /proc/self/task/<pid>/schedstat (ns on CPU of the JS
//    thread only), taken right before the first call and right after the
//    last answer of the round (nothing of the bench's own bookkeeping in
//    between: the calls' loop is what any caller of herald runs), faults
//    from getrusage (minor faults, whole process). Both hold up on a loaded
//    machine better than calls/s. Each round also shows how its answers
//    batched (per wake-up of the loop, per call into JS): the fewer per
//    wake-up, the more a wake-up's fixed cost weighs per call; and the JS
//    thread's run-queue wait per call (schedstat's second field: time it was
//    ready but another thread had the CPU), which says how contended the
//    machine was while the round ran (a contended core also evicts the
//    thread's caches, which raises its CPU per call).
// 2. full GCs (mark-compacts, from the `gc` performance entries) per 10k
//    answers of 10 KiB (copied into a Buffer of their own) and 100 KiB
//    (zero-copy) at 64 in flight.
// 3. the seed's comparison, measured as lua-resty-ffi's benchmark did: the
//    same echo over a unix domain socket to our own blocking C server
//    (test/fixtures/ffi/bin/uds-echo-server.c: one connection, frames of a
//    4-byte big-endian length + payload), payloads of "A" at 512 B, 4 KiB,
//    10 KiB and 100 KiB, one call at a time (sequential, as the seed) and 64
//    in flight (pipelined on the one connection). Per cell: a warm-up round
//    of both sides, discarded, then BENCH_ROUNDS short rounds that
//    interleave herald and uds (who goes first alternates); the figure is
//    the median of the per-round ratios of calls/s, with their range, and
//    the full GCs (mark-compacts) that began within each side's rounds per
//    1k calls (counted: at 100 KiB one in flight a full GC decides a round).
//    BENCH_SIZES=102400 (bytes, comma-separated) runs some sizes only.
// Then koffi's `.async()` and a worker thread at 4 KiB, for context.
// Then the goal cells of issue 23 in one table (the ratios at one call in
// flight per size and at 4 KiB x 64, main-thread CPU and faults per call at
// x 64 and x 1024, each with its range over the rounds). Last line:
// `herald/uds = N.Nx` (4 KiB, 64 in flight).
//
// BENCH_SPIN_US sets the runtimes' pollerSpinUs (e.g. 0 to compare without
// spinning). BENCH_RECORD=<file> appends this run's goal cells to <file> (one JSON line)
// and prints them over the last three runs recorded there, with their spread
// (max - min) / median: the "three consecutive runs" of the goals.
//
// BENCH_MS (default 150) per cell and round, BENCH_ROUNDS (default 9);
// BENCH_SMOKE=1 runs everything briefly (a fraction of a second) to check it
// works. BENCH_ONLY=cost,gc,seed,context runs only the parts named. The echo server is built by scripts/build-native.mjs (npm ci).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { NativeRuntime } from '../lib/ffi/index.js';
import { nativeAddon } from '../lib/ffi/native-addon.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = path.join(ROOT, 'test', 'fixtures', 'ffi', 'build');
const SMOKE = process.env.BENCH_SMOKE === '1';
const DURATION_MS = SMOKE ? 4 : Number(process.env.BENCH_MS ?? 150);
const ROUNDS = SMOKE ? 1 : Number(process.env.BENCH_ROUNDS ?? 9);
const COST_CALLS = SMOKE ? 400 : Number(process.env.BENCH_COST_CALLS ?? 100_000);
const COST_ROUNDS = SMOKE ? 1 : Number(process.env.BENCH_COST_ROUNDS ?? 11);
const GC_CALLS = SMOKE ? 100 : 20_000;
/** BENCH_SIZES: the comparison's payload sizes in bytes (default 512,4096,10240,102400). */
const SIZES = process.env.BENCH_SIZES
  ? process.env.BENCH_SIZES.split(',').map(Number)
  : [512, 4096, 10240, 102400];
/** BENCH_SPIN_US: the runtimes' pollerSpinUs (default: the option's default). */
const SPIN_US =
  process.env.BENCH_SPIN_US === undefined ? undefined : Number(process.env.BENCH_SPIN_US);
const ONLY = process.env.BENCH_ONLY?.split(',').map(part => part.trim());
const runs = (part: 'cost' | 'gc' | 'seed' | 'context'): boolean => !ONLY || ONLY.includes(part);

type Call = (request: Buffer) => Promise<Buffer>;

/** Closed loop for `ms`: `inFlight` callers, each calling again when answered. Calls/s. */
async function rate(call: Call, request: Buffer, inFlight: number, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let calls = 0;
  const caller = async (): Promise<void> => {
    while (performance.now() < end) {
      const answer = await call(request);
      if (answer.length !== request.length)
        throw new Error(`echo of ${request.length} bytes answered ${answer.length}`);
      calls++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, caller));
  return calls / ((performance.now() - started) / 1000);
}

/** Exactly `count` calls, `inFlight` at a time. */
async function calls(call: Call, request: Buffer, inFlight: number, count: number): Promise<void> {
  let next = 0;
  const caller = async (): Promise<void> => {
    while (next++ < count) {
      const answer = await call(request);
      if (answer.length !== request.length) throw new Error(`answered ${answer.length} bytes`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, caller));
}

/** This (the JS) thread's schedstat: ns on CPU, ns waiting on a run queue. */
const mainThreadSchedstat = (): { cpuNs: number; waitNs: number } => {
  const fields = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
  return { cpuNs: Number(fields[0]), waitNs: Number(fields[1]) };
};

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
/** (max - min) / median, as a percentage; "-" when the median is 0. */
const spread = (values: number[]): string => {
  const m = median(values);
  return m === 0 ? '-' : `${(((Math.max(...values) - Math.min(...values)) / m) * 100).toFixed(0)}%`;
};
const fmt = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`;

function herald(name: string): { call: Call; runtime: NativeRuntime } {
  const runtime = NativeRuntime.load(path.join(BUILD, 'libherald_echo.so'), {
    cfg: `threads=1;bench-${name}`,
    name: `echo-${name}`,
    ...(SPIN_US === undefined ? {} : { pollerSpinUs: SPIN_US }),
  });
  return { runtime, call: request => runtime.call(request) };
}

/** A figure over rounds: median, range, spread. */
interface Figure {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, as text. */
  spread: string;
}
const figure = (values: number[]): Figure => ({
  median: median(values),
  min: Math.min(...values),
  max: Math.max(...values),
  spread: spread(values),
});

/** What the goal table (issue 23) shows. */
interface Goals {
  cost: Map<number, { cpu: Figure; faults: Figure; wait: Figure; fullGcsPer100k: number }>;
  /** "size x in flight" -> calls/s ratio herald/uds over the rounds. */
  ratios: Map<string, Figure>;
}
const goals: Goals = { cost: new Map(), ratios: new Map() };

/**
 * The discarded warm-up of one width: passes of COST_CALLS calls until a pass
 * grows the addon's slab pool by less than 5% (at most WARM_UP_PASSES). The goal is the
 * steady state's cost per call; at 1024 in flight one pass left the pool
 * short of its working set (~230 slabs of 512 KiB: answers are held until V8
 * collects their Buffers), so the first counted round paid for slabs being
 * allocated and faulted in (1.7-2.4 us and 0.12-0.16 faults per call, against
 * 0.7-1.0 us and 0.00x for the rounds after it).
 */
const WARM_UP_PASSES = 6;
async function warmUp(call: Call, request: Buffer, inFlight: number): Promise<void> {
  let passes = 0;
  let grew = 0;
  do {
    const before = nativeAddon().stats().slabAllocations;
    await calls(call, request, inFlight, COST_CALLS);
    grew = nativeAddon().stats().slabAllocations - before;
    passes++;
    // Settled once a pass adds under 5% to the pool (it follows V8's young
    // generation, which keeps growing a little for a while).
  } while (grew * 20 > nativeAddon().stats().slabsLive && passes < WARM_UP_PASSES && !SMOKE);
  console.log(
    `| ${inFlight} | warm-up | ${passes} pass(es) of ${COST_CALLS} calls, discarded; slabs allocated in the last: ${grew}, live: ${nativeAddon().stats().slabsLive} | | | | | | |`,
  );
}

/** Part 1: CPU and faults per call, 64 and 1024 in flight interleaved in each round. */
async function cost(call: Call): Promise<void> {
  console.log(
    `\n## cost per call (herald, C echo, 4 KiB): ${COST_ROUNDS} rounds of ${COST_CALLS} calls after a discarded warm-up per width (until the slab pool stops growing)\n`,
  );
  // How answers batched: per wake-up of the event loop, and per call into
  // JS (a wake-up drains in rounds the answers that arrive meanwhile).
  console.log(
    '| in flight | round | main-thread CPU us/call | page faults/call | calls/s | full GCs in the round | answers/wake-up | answers/JS batch | run-queue wait us/call |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  const request = Buffer.alloc(4096, 0x41);
  const widths = [64, 1024];
  // Full GCs land in some rounds and not others: the main source of the
  // spread between rounds, so each round shows its count.
  let fullGcs = 0;
  const observer = new PerformanceObserver(list => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) fullGcs++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const cpu = new Map<number, number[]>(widths.map(w => [w, []]));
  const faults = new Map<number, number[]>(widths.map(w => [w, []]));
  const waits = new Map<number, number[]>(widths.map(w => [w, []]));
  // Full GCs in the counted rounds, by width (load-independent: how often
  // V8 chose a mark-compact over the scavenger for this path).
  const gcs = new Map<number, number>(widths.map(w => [w, 0]));
  // The widest first: the pool it grows serves the narrower one too.
  for (const inFlight of [...widths].reverse()) await warmUp(call, request, inFlight);
  for (let round = 1; round <= COST_ROUNDS; round++) {
    // Alternate which width goes first, so a drift in load favours neither.
    for (const inFlight of round % 2 === 0 ? widths : [...widths].reverse()) {
      const s0 = nativeAddon().stats();
      const f0 = process.resourceUsage().minorPageFault;
      const g0 = fullGcs;
      const t0 = performance.now();
      const c0 = mainThreadSchedstat();
      await calls(call, request, inFlight, COST_CALLS);
      const c1 = mainThreadSchedstat();
      const seconds = (performance.now() - t0) / 1000;
      const f1 = process.resourceUsage().minorPageFault;
      // GC entries are delivered asynchronously: let them in before counting.
      await new Promise(resolve => setImmediate(resolve));
      cpu.get(inFlight)!.push((c1.cpuNs - c0.cpuNs) / COST_CALLS / 1000);
      waits.get(inFlight)!.push((c1.waitNs - c0.waitNs) / COST_CALLS / 1000);
      faults.get(inFlight)!.push((f1 - f0) / COST_CALLS);
      gcs.set(inFlight, gcs.get(inFlight)! + fullGcs - g0);
      const s1 = nativeAddon().stats();
      const answers = s1.answers - s0.answers;
      console.log(
        `| ${inFlight} | ${round} | ${cpu.get(inFlight)!.at(-1)!.toFixed(2)} | ` +
          `${faults.get(inFlight)!.at(-1)!.toFixed(3)} | ${fmt(COST_CALLS / seconds)} | ${fullGcs - g0} | ` +
          `${(answers / (s1.wakeups - s0.wakeups)).toFixed(1)} | ${(answers / (s1.batches - s0.batches)).toFixed(1)} | ` +
          `${waits.get(inFlight)!.at(-1)!.toFixed(2)} |`,
      );
    }
  }
  observer.disconnect();
  for (const inFlight of widths) {
    const c = figure(cpu.get(inFlight)!);
    const f = figure(faults.get(inFlight)!);
    const w = figure(waits.get(inFlight)!);
    const fullGcsPer100k = (gcs.get(inFlight)! * 100_000) / (COST_CALLS * COST_ROUNDS);
    goals.cost.set(inFlight, { cpu: c, faults: f, wait: w, fullGcsPer100k });
    console.log(
      `| ${inFlight} | median (range; spread) | ${c.median.toFixed(2)} (${c.min.toFixed(2)}-${c.max.toFixed(2)}; ${c.spread}) | ` +
        `${f.median.toFixed(3)} (${f.min.toFixed(3)}-${f.max.toFixed(3)}) | | ${fullGcsPer100k.toFixed(1)} per 100k calls | | | ${w.median.toFixed(2)} (${w.min.toFixed(2)}-${w.max.toFixed(2)}) |`,
    );
  }
}

/** Part 2: full GCs per 10k zero-copy answers. */
async function fullGcs(call: Call): Promise<void> {
  console.log(
    '\n## full GCs (mark-compact) per 10k answers, 64 in flight: 10 KiB (own Buffer), 100 KiB (zero-copy)\n',
  );
  console.log('| answer | full GCs / 10k | scavenges / 10k |');
  console.log('|---|---|---|');
  for (const size of [10240, 102400]) {
    let major = 0;
    let minor = 0;
    const observer = new PerformanceObserver(list => {
      for (const entry of list.getEntries()) {
        const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
        if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) major++;
        if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) minor++;
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    await calls(call, Buffer.alloc(size, 0x41), 64, GC_CALLS);
    await new Promise(resolve => setImmediate(resolve));
    observer.disconnect();
    const per10k = (n: number): string => ((n * 10_000) / GC_CALLS).toFixed(1);
    console.log(`| ${size / 1024} KiB | ${per10k(major)} | ${per10k(minor)} |`);
  }
}

/** Our blocking C echo server, and a client on one connection (pipelined when several are in flight). */
async function uds(): Promise<{ call: Call; cpuUs(): number; close(): Promise<void> }> {
  const server = path.join(BUILD, 'uds-echo-server');
  if (!existsSync(server))
    throw new Error(`${server} is not built: run npm run build:native (or npm ci)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-uds-'));
  const socketPath = path.join(dir, 'echo.sock');
  const child = spawn(server, [socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  // Never leave the server behind, even when the bench fails.
  process.once('exit', () => child.kill());
  await once(child.stdout!, 'data');
  const socket = net.connect(socketPath);
  await once(socket, 'connect');
  const waiting: ((answer: Buffer) => void)[] = [];
  let head = 0;
  let pending = Buffer.alloc(0);
  socket.on('data', chunk => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let offset = 0;
    while (pending.length - offset >= 4) {
      const length = pending.readUInt32BE(offset);
      if (pending.length - offset < 4 + length) break;
      waiting[head++](pending.subarray(offset + 4, offset + 4 + length));
      offset += 4 + length;
    }
    if (head > 4096 && head * 2 > waiting.length) {
      waiting.splice(0, head);
      head = 0;
    }
    pending = pending.subarray(offset);
  });
  // One frame buffer per payload: the client does no more work than needed.
  const frames = new WeakMap<Buffer, Buffer>();
  const frameOf = (request: Buffer): Buffer => {
    let frame = frames.get(request);
    if (!frame) {
      frame = Buffer.allocUnsafe(4 + request.length);
      frame.writeUInt32BE(request.length);
      request.copy(frame, 4);
      frames.set(request, frame);
    }
    return frame;
  };
  const call: Call = request =>
    new Promise(resolve => {
      waiting.push(resolve);
      socket.write(frameOf(request));
    });
  // The server's CPU time (utime + stime, in clock ticks of 10 ms), in us.
  const cpuUs = (): number => {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  };
  return {
    call,
    cpuUs,
    close: async () => {
      socket.destroy();
      child.kill();
      await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Full GCs (mark-compacts) by when they began (performance.now()), so that
 * each cell of the comparison counts those that began within it: a full GC
 * costs milliseconds, and at 100 KiB one call in flight one decides a round.
 */
const fullGcStarts: number[] = [];
const fullGcObserver = new PerformanceObserver(list => {
  for (const entry of list.getEntries()) {
    const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) fullGcStarts.push(entry.startTime);
  }
});
const fullGcsWithin = (from: number, to: number): number =>
  fullGcStarts.filter(start => start >= from && start < to).length;

/** Part 3: herald vs our socket echo, interleaved rounds, median of per-round ratios. */
/** One cell of one round: calls/s, CPU per call of every process involved (us), when it ran. */
async function cell(
  call: Call,
  peerCpuUs: () => number,
  request: Buffer,
  inFlight: number,
): Promise<{ perSecond: number; cpuPerCall: number; calls: number; from: number; to: number }> {
  let count = 0;
  const counted: Call = r => {
    count++;
    return call(r);
  };
  const c0 = process.cpuUsage();
  const p0 = peerCpuUs();
  const from = performance.now();
  const perSecond = await rate(counted, request, inFlight, DURATION_MS);
  const own = process.cpuUsage(c0);
  return {
    perSecond,
    cpuPerCall: (own.user + own.system + peerCpuUs() - p0) / count,
    calls: count,
    from,
    to: performance.now(),
  };
}

async function seedComparison(
  ours: Call,
  runtime: NativeRuntime,
  theirs: { call: Call; cpuUs(): number },
): Promise<number> {
  console.log(
    `\n## herald vs unix socket (the seed's comparison): median of ${ROUNDS} per-round ratios, ${DURATION_MS} ms per cell, after a discarded warm-up round\n`,
  );
  console.log(
    "CPU per call counts every process: herald (JS + runtime threads, its poller's spin included) vs client + echo server. " +
      "Poller spins: the share of the rounds' calls whose poller was spinning when the call came (no futex wake, no sleep). " +
      'Full GCs: mark-compacts that began within the rounds of each side, per 1k calls (counted, not timed).\n',
  );
  console.log(
    '| size | in flight | herald calls/s | uds calls/s | herald/uds calls/s: median | range | CPU us/call herald | uds | uds/herald CPU: median | range | poller spin hits | full GCs / 1k calls herald | uds |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  fullGcObserver.observe({ entryTypes: ['gc'] });
  let headline = 0;
  const none = (): number => 0;
  for (const size of SIZES) {
    for (const inFlight of [1, 64]) {
      const request = Buffer.alloc(size, 0x41); // "A" repeated, as the seed
      // A warm-up round of both sides, discarded (JIT, pools, socket buffers).
      await rate(ours, request, inFlight, DURATION_MS);
      await rate(theirs.call, request, inFlight, DURATION_MS);
      const spin0 = runtime.stats();
      let heraldCalls = 0;
      const ratios: number[] = [];
      const cpuRatios: number[] = [];
      type SideRound = {
        perSecond: number;
        cpuPerCall: number;
        calls: number;
        from: number;
        to: number;
      };
      const h: SideRound[] = [];
      const u: SideRound[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate who goes first, so a drift in load favours neither.
        const first = round % 2 === 0;
        const ourCell = () => cell(ours, none, request, inFlight);
        const theirCell = () => cell(theirs.call, theirs.cpuUs, request, inFlight);
        const a = await (first ? ourCell() : theirCell());
        const b = await (first ? theirCell() : ourCell());
        const [mine, other] = first ? [a, b] : [b, a];
        heraldCalls += mine.calls;
        h.push(mine);
        u.push(other);
        ratios.push(mine.perSecond / other.perSecond);
        cpuRatios.push(other.cpuPerCall / mine.cpuPerCall);
      }
      // GC entries arrive asynchronously: let them in before counting.
      await new Promise(resolve => setImmediate(resolve));
      const gcsPer1k = (side: { calls: number; from: number; to: number }[]): string => {
        const gcs = side.reduce((sum, c) => sum + fullGcsWithin(c.from, c.to), 0);
        const count = side.reduce((sum, c) => sum + c.calls, 0);
        return ((gcs * 1000) / Math.max(1, count)).toFixed(2);
      };
      const m = median(ratios);
      if (size === 4096 && inFlight === 64) headline = m;
      goals.ratios.set(`${size}x${inFlight}`, figure(ratios));
      const spin1 = runtime.stats();
      const hits = spin1.pollerSpinHits - spin0.pollerSpinHits;
      const spins = spin1.pollerSpins - spin0.pollerSpins;
      const range = (values: number[]): string =>
        `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}x`;
      console.log(
        `| ${size >= 1024 ? `${size / 1024} KiB` : `${size} B`} | ${inFlight} | ` +
          `${fmt(median(h.map(x => x.perSecond)))} | ${fmt(median(u.map(x => x.perSecond)))} | ` +
          `${m.toFixed(2)}x | ${range(ratios)} | ${median(h.map(x => x.cpuPerCall)).toFixed(1)} | ` +
          `${median(u.map(x => x.cpuPerCall)).toFixed(1)} | ${median(cpuRatios).toFixed(2)}x | ${range(cpuRatios)} | ` +
          `${((hits / Math.max(1, heraldCalls)) * 100).toFixed(0)}% (${spins} spins) | ${gcsPer1k(h)} | ${gcsPer1k(u)} |`,
      );
    }
  }
  fullGcObserver.disconnect();
  return headline;
}

/** koffi's asynchronous call of a plain C echo (libuv pool); koffi refuses more than a few dozen at once. */
function koffiPeer(): { call: Call; close(): void } {
  const lib = koffi.load(path.join(BUILD, 'libherald_plain_echo.so'));
  const echo = lib.func('int herald_plain_echo(const uint8_t *in, int len, _Out_ uint8_t *out)');
  let running = 0;
  const queue: (() => void)[] = [];
  const start = (request: Buffer, resolve: (b: Buffer) => void, reject: (e: unknown) => void) => {
    running++;
    const out = Buffer.allocUnsafe(request.length);
    echo.async(request, request.length, out, (error: unknown, length: number) => {
      running--;
      queue.shift()?.();
      if (error) reject(error);
      else resolve(out.subarray(0, length));
    });
  };
  const call: Call = request =>
    new Promise((resolve, reject) => {
      if (running < 32) start(request, resolve, reject);
      else queue.push(() => start(request, resolve, reject));
    });
  return { call, close: () => lib.unload() };
}

/** A worker thread echoing each message back. */
async function workerPeer(): Promise<{ call: Call; close(): Promise<void> }> {
  const thread = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.on('message', message => parentPort.postMessage(message));`,
    { eval: true },
  );
  await once(thread, 'online');
  const waiting: ((answer: Buffer) => void)[] = [];
  let head = 0;
  thread.on('message', (answer: Uint8Array) => {
    waiting[head++](Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
    if (head > 4096 && head * 2 > waiting.length) {
      waiting.splice(0, head);
      head = 0;
    }
  });
  const call: Call = request =>
    new Promise(resolve => {
      waiting.push(resolve);
      thread.postMessage(request);
    });
  return { call, close: async () => void (await thread.terminate()) };
}

async function context(ours: Call): Promise<void> {
  console.log('\n## other in-process ways, 4 KiB (calls/s, best of the rounds)\n');
  console.log('| in flight | herald | koffi .async() | worker postMessage |');
  console.log('|---|---|---|---|');
  const k = koffiPeer();
  const w = await workerPeer();
  const request = Buffer.alloc(4096, 0x41);
  for (const inFlight of [1, 64]) {
    const best = async (call: Call): Promise<number> => {
      let top = 0;
      for (let round = 0; round < Math.min(ROUNDS, 3); round++)
        top = Math.max(top, await rate(call, request, inFlight, DURATION_MS));
      return top;
    };
    console.log(
      `| ${inFlight} | ${fmt(await best(ours))} | ${fmt(await best(k.call))} | ${fmt(await best(w.call))} |`,
    );
  }
  k.close();
  await w.close();
}

/** The goal cells of issue 23, each with its range over the rounds of this run. */
function goalTable(): void {
  console.log('\n## goal cells (issue 23): this run\n');
  console.log(
    '| cell | median | range over rounds | spread over rounds | goal (for the median) | met |',
  );
  console.log('|---|---|---|---|---|---|');
  const x = (n: number): string => `${n.toFixed(2)}x`;
  for (const size of SIZES) {
    const r = goals.ratios.get(`${size}x1`);
    if (!r) continue;
    const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
    console.log(
      `| herald/uds calls/s, ${label}, 1 in flight | ${x(r.median)} | ${x(r.min)}-${x(r.max)} | ${r.spread} | >= 1.5x | ${r.median >= 1.5 ? 'yes' : 'NO'} |`,
    );
  }
  const headline = goals.ratios.get('4096x64');
  if (headline)
    console.log(
      `| herald/uds calls/s, 4 KiB, 64 in flight | ${x(headline.median)} | ${x(headline.min)}-${x(headline.max)} | ${headline.spread} | >= 3x | ${headline.median >= 3 ? 'yes' : 'NO'} |`,
    );
  for (const [inFlight, { cpu, faults, wait, fullGcsPer100k }] of goals.cost) {
    console.log(
      `| main-thread CPU us/call, 4 KiB x ${inFlight} | ${cpu.median.toFixed(2)} | ${cpu.min.toFixed(2)}-${cpu.max.toFixed(2)} | ${cpu.spread} | <= 2 us (spread <= 25% over 3 runs: BENCH_RECORD) | ${cpu.median <= 2 ? 'yes' : 'NO'} |`,
    );
    console.log(
      `| (JS thread's run-queue wait us/call, 4 KiB x ${inFlight}: how contended) | ${wait.median.toFixed(2)} | ${wait.min.toFixed(2)}-${wait.max.toFixed(2)} | ${wait.spread} | - | - |`,
    );
    console.log(
      `| page faults/call, 4 KiB x ${inFlight} | ${faults.median.toFixed(3)} | ${faults.min.toFixed(3)}-${faults.max.toFixed(3)} | ${faults.spread} | <= 0.05 | ${faults.median <= 0.05 ? 'yes' : 'NO'} |`,
    );
    console.log(
      `| (full GCs per 100k calls, 4 KiB x ${inFlight}, all counted rounds) | ${fullGcsPer100k.toFixed(1)} | - | - | - | - |`,
    );
  }
}

/** One run's goal cells, as BENCH_RECORD keeps them. */
interface Recorded {
  at: string;
  load: number[];
  cells: Record<string, number>;
}

/** The goal cells of this run, by name (medians). */
function goalCells(): Record<string, number> {
  const cells: Record<string, number> = {};
  for (const [key, r] of goals.ratios) {
    const [size, inFlight] = key.split('x').map(Number);
    if (inFlight === 1 || (size === 4096 && inFlight === 64))
      cells[`herald/uds ${size >= 1024 ? `${size / 1024} KiB` : `${size} B`} x ${inFlight}`] =
        r.median;
  }
  for (const [inFlight, { cpu, faults, wait, fullGcsPer100k }] of goals.cost) {
    cells[`main-thread CPU us/call x ${inFlight}`] = cpu.median;
    cells[`full GCs per 100k calls x ${inFlight}`] = fullGcsPer100k;
    cells[`page faults/call x ${inFlight}`] = faults.median;
    cells[`run-queue wait us/call x ${inFlight}`] = wait.median;
  }
  return cells;
}

/** BENCH_RECORD: append this run, print the last three runs' goal cells and their spread. */
function recordRun(file: string, startLoad: number[]): void {
  const run: Recorded = { at: new Date().toISOString(), load: startLoad, cells: goalCells() };
  appendFileSync(file, `${JSON.stringify(run)}\n`);
  const runs = readFileSync(file, 'utf8')
    .split('\n')
    .filter(line => line.trim())
    .map(line => JSON.parse(line) as Recorded)
    .slice(-3);
  console.log(`\n## goal cells over the last ${runs.length} runs recorded in ${file}\n`);
  console.log(
    `| cell | ${runs.map(r => `${r.at.slice(11, 19)} (load ${r.load[0].toFixed(1)})`).join(' | ')} | spread |`,
  );
  console.log(`|---|${runs.map(() => '---|').join('')}---|`);
  for (const name of Object.keys(run.cells)) {
    const values = runs.map(r => r.cells[name]).filter((v): v is number => v !== undefined);
    const digits = name.startsWith('page faults') ? 3 : 2;
    console.log(
      `| ${name} | ${runs.map(r => (r.cells[name] === undefined ? '-' : r.cells[name].toFixed(digits))).join(' | ')} | ${spread(values)} |`,
    );
  }
}

async function main(): Promise<void> {
  const startLoad = os.loadavg();
  console.log(
    `# bench:ffi${SMOKE ? ' (BENCH_SMOKE: figures meaningless)' : ''}: ${os.cpus().length} CPUs, node ${process.version}, ` +
      `pollerSpinUs ${SPIN_US ?? 'default'}, ` +
      `load average ${os
        .loadavg()
        .map(l => l.toFixed(1))
        .join(' ')}`,
  );
  const costRuntime = herald('cost');
  if (runs('cost')) await cost(costRuntime.call);
  if (runs('gc')) await fullGcs(costRuntime.call);
  costRuntime.runtime.close();

  const ours = herald('seed');
  let headline = 0;
  if (runs('seed')) {
    const server = await uds();
    headline = await seedComparison(ours.call, ours.runtime, server);
    await server.close();
  }
  if (runs('context')) await context(ours.call);
  ours.runtime.close();
  goalTable();
  if (process.env.BENCH_RECORD) recordRun(process.env.BENCH_RECORD, startLoad);
  console.log(
    `\nload average at the end ${os
      .loadavg()
      .map(l => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(`herald/uds = ${headline.toFixed(1)}x`);
}

main().then(
  () => process.exit(0),
  error => {
    console.error(error);
    process.exit(1);
  },
);
