#!/usr/bin/env node
// What OpenTelemetry costs (issue 26's "Done when"): with the API absent, the
// CPU per event of herald's variants in every bench against the same code
// with the telemetry compiled out; and the figure with a real SDK and
// Prometheus attached.
//
//   npm run bench:otel-overhead [-- --benches local,redis --runs 3 --pairs 2 --no-sdk --baseline DIR]
//
//   absent    this checkout, `@opentelemetry/*` cannot be imported
//             (--import ./bench/harness/otel-absent.mjs in NODE_OPTIONS, so
//             child processes too; BENCH_OTEL=absent checks it)
//   stripped  the reference: this checkout copied with every telemetry hook
//             compiled out of lib/ (bench/harness/otel-strip.mjs; it refuses
//             a hook site it cannot fold), run the same way; --baseline DIR
//             takes another checkout instead (e.g. a worktree of the commit
//             before the telemetry)
//   sdk       this checkout with the real SDK, the Prometheus exporter and
//             herald's telemetry attached in every Node process of the
//             bench, its worker processes too (BENCH_OTEL=sdk and
//             otel-sdk.preload.ts in NODE_OPTIONS; otel-sdk.ts)
//
// Each bench runs herald's variants alone (BENCH_VARIANTS), in a shorter
// configuration than its own full run (BENCHES below). A run of a bench is
// `pairs` pairs of processes, absent and stripped back to back (who goes
// first alternates; registry's pair is one process holding both sides,
// registry-interleaved.ts), then one sdk process; a process's figure is the median
// CPU per event over its interleaved rounds; a run's absent/stripped figure
// is the median of its per-pair ratios, its sdk figure sdk/stripped. The
// table gives, per variant, the median of the runs' figures and their range.
// Then bench/harness/otel-count.mjs (one pair, under callgrind): the
// instructions per event of the bus path, and of bench:registry's app when
// registry runs, which load does not move (--no-count skips it). The last
// line is the verdict. Each bench process runs in a process group of its
// own, ended when it exits (no worker outlives it holding the pipes).
// BENCH_SMOKE=1: one run of one pair of every bench (and its sdk process)
// at the benches' own smoke sizes, no count (CI, a few minutes on a quiet
// machine, ~10 at a load average of 30: a bench whose report breaks when
// BENCH_VARIANTS leaves its peers out fails here; the stripper still
// compiles out every hook of lib/ and refuses one it cannot).
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildStrippedTree } from './otel-strip.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const SMOKE = process.env.BENCH_SMOKE === '1';

/**
 * Per bench: the settings of its shorter run, which variants are herald's,
 * seconds one process takes on a quiet 2-core machine (absent or stripped;
 * sdk), for the estimate, and pairs per run by default (the slow
 * multi-process benches take one).
 */
const BENCHES = {
  local: {
    env: { BENCH_EVENTS: '50000', BENCH_ROUNDS: '5' },
    variants: '^\\([ab]\\) herald (postLocal|post) -> handler$',
    seconds: 6,
    sdkSeconds: 20,
    pairs: 2,
  },
  redis: {
    env: { BENCH_EVENTS: '10000', BENCH_ROUNDS: '3' },
    variants: '^herald$',
    seconds: 7,
    sdkSeconds: 12,
    pairs: 2,
  },
  // EventsModule alone: durable mode adds outbox rows, not hooks (the same bus).
  pg: {
    env: { BENCH_SCALE: '0.1', BENCH_ROUNDS: '3' },
    variants: '^herald EventsModule ',
    seconds: 12,
    sdkSeconds: 15,
    pairs: 2,
  },
  microservices: {
    env: { BENCH_SCALE: '0.25', BENCH_ROUNDS: '3' },
    variants: '^(redis|pg) (EventsModule|microservice)$',
    seconds: 10,
    sdkSeconds: 15,
    pairs: 2,
  },
  // Every worker process compiles the TypeScript it imports: most of these
  // two benches' time is process starts, so fewer rounds and variants.
  ipc: {
    select: { BENCH_MODES: 'herald,nest', BENCH_FAILOVERS: '0' },
    env: { BENCH_SECONDS: '1', BENCH_ROUNDS: '2' },
    variants: '',
    seconds: 22,
    sdkSeconds: 27,
    pairs: 1,
  },
  // The tiered fan-out alone: its `redis` variant is the redis transport, bench:redis's.
  tiered: {
    env: { BENCH_SECONDS: '1', BENCH_ROUNDS: '2' },
    variants: '^tiered$',
    seconds: 25,
    sdkSeconds: 30,
    pairs: 1,
  },
  // Not a harness bench: bench:registry's herald app (10,000 handlers on
  // 10,000 distinct events), built afresh BENCH_APPS times per side, each
  // running BENCH_PASSES passes of each kind after its first: a pass is 1–5
  // ms of CPU, too short alone for CPU time to tell 5%; a side's figure is
  // the CPU of all of them. Both sides in one process, their apps
  // alternating (registry-interleaved.ts, which imports the reference's
  // bench/harness/registry-app.ts): a process is a pair; the sdk process
  // runs registry-passes.ts.
  registry: {
    script: 'bench/harness/registry-interleaved.ts',
    sdkScript: 'bench/harness/registry-passes.ts',
    inProcess: true,
    // 4 apps x 12 later passes: 480,000 events of each kind per process, the
    // start-ups (~0.35 s of CPU per app) kept to under half its CPU.
    env: { BENCH_PROVIDERS: '1000', BENCH_APPS: '4', BENCH_PASSES: '12' },
    variants: '',
    seconds: 8,
    sdkSeconds: 25,
    pairs: 3,
  },
};
// bench:ffi and bench:ffi-leak: lib/ffi has no telemetry hook (otel-strip
// folds none there; observeRuntime reads stats() only when an app calls it).

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}
const flag = name => process.argv.includes(`--${name}`);

const benches = option('benches', Object.keys(BENCHES).join(',')).split(',').filter(Boolean);
for (const bench of benches)
  if (!(bench in BENCHES))
    throw new Error(`--benches: no bench ${bench} (${Object.keys(BENCHES).join(', ')})`);
const runs = Number(option('runs', SMOKE ? '1' : '3'));
const pairsOption = option('pairs', SMOKE ? '1' : undefined);
const withSdk = !flag('no-sdk');
const baselineDir = option('baseline', undefined);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be an integer >= 1');
if (pairsOption !== undefined && !(Number(pairsOption) >= 1))
  throw new Error('--pairs must be an integer >= 1');
const pairsOf = bench => Number(pairsOption ?? BENCHES[bench].pairs);

const load = () =>
  os
    .loadavg()
    .map(n => n.toFixed(2))
    .join(' ');
const median = values => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '?');

/** The reference checkout: the stripped copy of this one, or --baseline. */
let reference;
if (baselineDir) {
  reference = { dir: path.resolve(baselineDir), name: `baseline ${baselineDir}`, temporary: false };
} else {
  const { dir, changed } = buildStrippedTree(root);
  reference = { dir, name: 'stripped', temporary: true };
  console.log(
    `otel-overhead: reference = this checkout with the telemetry compiled out (bench/harness/otel-strip.mjs) in ${dir}: ` +
      changed.map(c => `${c.name} (${c.sites.length} sites)`).join(', '),
  );
}

/** The process groups of the bench processes running (ended on Ctrl-C). */
const groups = new Set();
for (const signal of ['SIGINT', 'SIGTERM'])
  process.once(signal, () => {
    for (const pid of groups) endGroup(pid);
    process.exit(1);
  });
function endGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}
/**
 * Runs one bench process in a process group of its own and waits for it to
 * exit; then ends what is left of the group: a worker that outlives its
 * failed primary (tiered's have no disconnect handler) would hold the output
 * pipes open and stall the run until the time limit.
 */
function run(command, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...options,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', chunk => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', chunk => (stderr += chunk));
    groups.add(child.pid);
    // A bench that hangs fails instead of stalling the run (the sdk processes take minutes under load).
    const limit = setTimeout(() => endGroup(child.pid), 1_800_000);
    let exit;
    child.on('error', reject);
    child.on('exit', (status, signal) => {
      exit = { status, signal };
      clearTimeout(limit);
      endGroup(child.pid);
      groups.delete(child.pid);
    });
    child.on('close', () => resolve({ ...exit, stdout, stderr }));
  });
}

/** One process of `bench` in `mode`: per herald variant its µs CPU per event, and the seconds it took. */
async function runOnce(bench, mode, extraEnv = {}) {
  const spec = BENCHES[bench];
  const dir = mode === 'stripped' ? reference.dir : root;
  const script = mode === 'sdk' ? (spec.sdkScript ?? spec.script) : spec.script;
  // Smoke mode: the bench's own smoke sizes (a fraction of a second), the
  // selection of its variants all the same.
  const env = { ...process.env, ...spec.select, ...(SMOKE ? {} : spec.env), ...extraEnv };
  delete env.BENCH_OTEL;
  if (spec.variants) env.BENCH_VARIANTS = spec.variants;
  if (mode !== 'sdk') {
    // Both sides of the comparison run without the API, the same way.
    env.BENCH_OTEL = 'absent';
    const hook = path.join(here, 'otel-absent.mjs');
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import ${hook}`.trim();
  } else {
    // The SDK, a Prometheus exporter and herald's telemetry in every Node
    // process of the bench, its workers too (ipc's and tiered's posts and
    // handlers run there), before their code runs.
    env.BENCH_OTEL = 'sdk';
    const ts = path.join(root, 'scripts', 'register-ts.mjs');
    const preload = path.join(here, 'otel-sdk.preload.ts');
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import ${ts} --import ${preload}`.trim();
  }
  const args = ['--expose-gc', '--import', path.join(dir, 'scripts', 'register-ts.mjs')];
  args.push(path.join(dir, script ?? path.join('bench', `${bench}.bench.ts`)));
  // mode 'both' (an inProcess bench): this checkout's and the reference's side in one process.
  if (mode === 'both') args.push(reference.dir);
  const started = Date.now();
  const result = await run(process.execPath, args, { cwd: dir, env });
  if (result.status !== 0) {
    process.stderr.write(result.stdout + result.stderr);
    throw new Error(`bench:${bench} (${mode}) exited with ${result.status ?? result.signal}`);
  }
  const cpu = new Map();
  if (bench === 'registry') {
    // registry-passes.ts (one side) or registry-interleaved.ts ({ absent,
    // stripped }): process CPU µs (every thread) summed over the apps. Its
    // JSON line (the sdk's summary may follow it).
    const json = JSON.parse(result.stdout.split('\n').findLast(line => line.startsWith('{')));
    const perEvent = f => {
      const map = new Map();
      const first = f.apps * f.eventsPerPass;
      const later = first * f.laterPassesPerApp;
      map.set('postLocal, passes 2+', f.localLaterCpu / later);
      map.set('post, passes 2+', f.asyncLaterCpu / later);
      map.set('postLocal, 1st pass', f.localFirstCpu / first);
      map.set('post, 1st pass', f.asyncFirstCpu / first);
      map.set('startup, ms CPU per app', f.startupCpu / f.apps / 1000);
      return map;
    };
    if (mode === 'both') {
      const both = { absent: perEvent(json.absent), stripped: perEvent(json.stripped) };
      return { cpu: both.absent, both, seconds: (Date.now() - started) / 1000 };
    }
    for (const [variant, value] of perEvent(json)) cpu.set(variant, value);
  } else {
    // | variant | events/s (range) | µs CPU/event (range) | latency |
    for (const line of result.stdout.split('\n')) {
      const cells = line.split('|').map(cell => cell.trim());
      if (cells.length < 5 || cells[1] === 'variant' || cells[1].startsWith('---')) continue;
      const value = Number.parseFloat(cells[3]);
      if (Number.isFinite(value)) cpu.set(cells[1], value);
    }
  }
  if (cpu.size === 0) throw new Error(`bench:${bench} (${mode}) printed no variant table`);
  return { cpu, seconds: (Date.now() - started) / 1000 };
}

const processes = benches.reduce(
  (sum, bench) =>
    sum + runs * ((BENCHES[bench].inProcess ? 1 : 2) * pairsOf(bench) + (withSdk ? 1 : 0)),
  0,
);
const expected = benches.reduce(
  (sum, bench) =>
    sum +
    runs *
      (2 * pairsOf(bench) * (SMOKE ? 4 : BENCHES[bench].seconds) +
        (withSdk ? (SMOKE ? 4 : BENCHES[bench].sdkSeconds) : 0)),
  // otel-count.mjs: two processes under callgrind.
  SMOKE || flag('no-count') || baselineDir ? 0 : 150,
);
console.log(
  `otel-overhead${SMOKE ? ' (SMOKE: figures meaningless)' : ''}: ${benches.join(', ')}; ${runs} run(s) each of ` +
    `pairs absent/${reference.name} (${benches.map(b => `${b} ${pairsOf(b)}`).join(', ')})` +
    `${withSdk ? ' + one sdk process' : ''}; ${processes} processes, expected ~${Math.ceil(expected / 60)} min on a quiet 2-core machine; ` +
    `${os.cpus().length} CPUs, load average ${load()}, ${new Date().toISOString()}`,
);

const started = Date.now();
let done = 0;
/** results[bench] = { runs: [{ ratios: Map(variant -> [per-pair ratio]), stripped: Map(variant -> [µs]), absent: ..., sdk: Map }] } */
const results = {};
try {
  for (const bench of benches) {
    results[bench] = [];
    for (let run = 1; run <= runs; run++) {
      const figures = { absent: [], stripped: [], sdk: undefined };
      for (let pair = 0; pair < pairsOf(bench); pair++) {
        if (BENCHES[bench].inProcess) {
          // One process holds the pair (its sides' apps alternate inside it).
          // Which side's app comes first in the process alternates, like the order of a pair's processes.
          const { both, seconds } = await runOnce(bench, 'both', {
            BENCH_FIRST: (run + pair) % 2 === 1 ? 'absent' : 'stripped',
          });
          figures.absent.push(both.absent);
          figures.stripped.push(both.stripped);
          done++;
          const eta = ((Date.now() - started) / done) * (processes - done);
          const ratios = [...both.absent].map(
            ([v, us]) => `${v}: ${fmt(us / both.stripped.get(v), 3)}x`,
          );
          console.log(
            `${bench} run ${run} pair ${pair + 1} (one process) ${seconds.toFixed(0).padStart(3)} s absent/stripped ` +
              `${ratios.join('; ')} | load ${load()}, ~${Math.ceil(eta / 60000)} min left`,
          );
          continue;
        }
        const order = (run + pair) % 2 === 1 ? ['absent', 'stripped'] : ['stripped', 'absent'];
        for (const mode of order) {
          const { cpu, seconds } = await runOnce(bench, mode);
          figures[mode].push(cpu);
          done++;
          const eta = ((Date.now() - started) / done) * (processes - done);
          console.log(
            `${bench} run ${run} pair ${pair + 1} ${mode.padEnd(8)} ${seconds.toFixed(0).padStart(3)} s ` +
              `${[...cpu].map(([v, us]) => `${v}: ${fmt(us)}`).join('; ')} | load ${load()}, ~${Math.ceil(eta / 60000)} min left`,
          );
        }
      }
      if (withSdk) {
        const { cpu, seconds } = await runOnce(bench, 'sdk');
        figures.sdk = cpu;
        done++;
        console.log(
          `${bench} run ${run} sdk      ${seconds.toFixed(0).padStart(3)} s ` +
            `${[...cpu].map(([v, us]) => `${v}: ${fmt(us)}`).join('; ')} | load ${load()}`,
        );
      }
      results[bench].push(figures);
    }
  }
} finally {
  if (reference.temporary) rmSync(reference.dir, { recursive: true, force: true });
}

console.log(
  `\nabsent/${reference.name}: CPU per event of each process = median of its interleaved rounds; ` +
    `a run's figure = median of its per-pair ratios; median (range) over ${runs} run(s). ` +
    `sdk = sdk/${reference.name} (µs per event with the SDK). ${((Date.now() - started) / 60000).toFixed(1)} min, load average now ${load()}`,
);
console.log(
  `| bench | variant | µs ${reference.name} | absent/${reference.name} | per run | ${withSdk ? 'sdk (µs) |' : ''}`,
);
console.log(`|---|---|---|---|---|${withSdk ? '---|' : ''}`);
const verdicts = [];
for (const bench of benches) {
  const list = results[bench];
  let worst = 0;
  for (const variant of list[0].stripped[0].keys()) {
    const perRun = list.map(({ absent, stripped }) =>
      median(absent.map((a, i) => a.get(variant) / stripped[i].get(variant))),
    );
    const ref = median(list.flatMap(({ stripped }) => stripped.map(s => s.get(variant))));
    const sdk = list.map(({ sdk, stripped }) =>
      sdk ? sdk.get(variant) / median(stripped.map(s => s.get(variant))) : NaN,
    );
    const sdkUs = median(list.map(({ sdk }) => sdk?.get(variant) ?? NaN));
    const ratio = median(perRun);
    const low = Math.min(...perRun.filter(Number.isFinite));
    const high = Math.max(...perRun.filter(Number.isFinite));
    if (!variant.startsWith('startup') && Number.isFinite(ratio)) worst = Math.max(worst, ratio);
    console.log(
      `| ${bench} | ${variant} | ${fmt(ref)} | ${fmt(ratio, 3)}x (${fmt(low)}–${fmt(high)}) | ${perRun.map(r => fmt(r)).join(' ')} |` +
        (withSdk
          ? ` ${fmt(median(sdk))}x (${fmt(sdkUs)} ${variant.includes(' ms ') ? 'ms' : 'µs'}) |`
          : ''),
    );
  }
  verdicts.push(`${bench} ${fmt(worst, 3)}x`);
}
// The load-independent figure (otel-count.mjs): one pair under callgrind is
// enough, its JavaScript count repeats to the instruction. The bus path, and
// bench:registry's app when registry is among the benches.
let counted = '';
if (!SMOKE && !flag('no-count') && !baselineDir) {
  const workloads = benches.includes('registry') ? ['bus', 'registry'] : ['bus'];
  for (const workload of workloads) {
    const started = Date.now();
    const count = spawnSync(
      process.execPath,
      [path.join(here, 'otel-count.mjs'), '--runs', '1', '--workload', workload],
      { cwd: root, encoding: 'utf8' },
    );
    process.stdout.write(`\n${count.stdout}`);
    if (count.status !== 0) throw new Error(`otel-count.mjs failed:\n${count.stderr}`);
    const verdict = /without GC\/compilers: median (\S+x)/.exec(count.stdout);
    if (verdict)
      counted += `; instructions per event of ${workload === 'bus' ? 'the bus path' : "bench:registry's app"} ${verdict[1]}`;
    console.log(`otel-count (${workload}): ${((Date.now() - started) / 60000).toFixed(1)} min`);
  }
}
const worstAll = Math.max(...verdicts.map(v => Number.parseFloat(v.split(' ')[1])));
console.log(
  `absent/${reference.name}, the dearest herald variant per bench: ${verdicts.join(', ')}; ` +
    `${worstAll <= 1.05 ? 'all within' : 'NOT all within'} the 5% budget (median of ${runs} run(s))${counted}`,
);
