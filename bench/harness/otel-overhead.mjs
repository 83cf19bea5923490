#!/usr/bin/env node
// What OpenTelemetry costs a bench (issue 26): runs one bench several times in
// each BENCH_OTEL mode (harness.otel.ts), the modes interleaved run by run
// (odd runs in order, even runs reversed), and prints each variant's CPU per
// event per mode and run, and the per-run ratio to the reference mode with
// its median:
//
//   node bench/harness/otel-overhead.mjs [--bench local] [--runs 3]
//        [--modes absent,off,sdk] [--baseline DIR]
//
//   absent    @opentelemetry/* cannot be imported (the optional peer not installed)
//   off       the API installed, NEST_HERALD_OTEL=off: herald's loader skips it
//   env       the API installed, no SDK: herald installs nothing (the default of an app)
//   sdk       the real SDK and the Prometheus exporter attached (every span exported)
//   baseline  the same bench in DIR (--baseline), e.g. a worktree of the commit before
//             the telemetry, with its node_modules: the "uninstrumented" figure
//
// The reference is `baseline` when given, else `absent`. Each run is a whole
// bench process with its own interleaved rounds (BENCH_ROUNDS, BENCH_EVENTS,
// BENCH_SMOKE pass through); the figure of a run is its median CPU per event.
// Children the bench spawns inherit absent (NODE_OPTIONS) and off (the
// variable); sdk attaches in the bench's main process only.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const bench = option('bench', 'local');
const runs = Number(option('runs', '3'));
const baseline = option('baseline', undefined);
const modes = option('modes', 'absent,off,sdk')
  .split(',')
  .filter(Boolean)
  .concat(baseline ? ['baseline'] : []);
const reference = baseline ? 'baseline' : modes[0];
const KNOWN = ['absent', 'off', 'env', 'sdk', 'baseline'];
for (const mode of modes) {
  if (!KNOWN.includes(mode)) throw new Error(`unknown mode ${mode}: one of ${KNOWN.join(', ')}`);
}
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be an integer >= 1');

const load = () =>
  os
    .loadavg()
    .map(n => n.toFixed(2))
    .join(' ');

/** One bench process in `mode`: its stdout, and the median CPU per event of each variant. */
function runOnce(mode) {
  const dir = mode === 'baseline' ? path.resolve(baseline) : root;
  const env = { ...process.env };
  delete env.BENCH_OTEL;
  if (mode !== 'baseline' && mode !== 'env') env.BENCH_OTEL = mode;
  if (mode === 'absent') {
    const hook = path.join(root, 'bench', 'harness', 'otel-absent.mjs');
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import ${hook}`.trim();
  }
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      path.join(dir, 'scripts', 'register-ts.mjs'),
      path.join(dir, 'bench', `${bench}.bench.ts`),
    ],
    { cwd: dir, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (result.status !== 0) {
    process.stderr.write(result.stdout + result.stderr);
    throw new Error(`bench:${bench} (${mode}) exited with ${result.status ?? result.signal}`);
  }
  const cpu = new Map();
  // | variant | events/s (range) | µs CPU/event (range) | latency |
  for (const line of result.stdout.split('\n')) {
    const cells = line.split('|').map(cell => cell.trim());
    if (cells.length < 5 || cells[1] === 'variant' || cells[1].startsWith('---')) continue;
    const value = Number.parseFloat(cells[3]);
    if (Number.isFinite(value)) cpu.set(cells[1], value);
  }
  if (cpu.size === 0) throw new Error(`bench:${bench} (${mode}) printed no variant table`);
  return { cpu, seconds: (Date.now() - started) / 1000 };
}

const median = values => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

console.log(
  `otel-overhead: bench:${bench}, ${runs} run(s) of modes ${modes.join(', ')} (interleaved), reference ${reference}; ` +
    `${os.cpus().length} CPUs, load average ${load()}`,
);
/** figures[mode][run] = Map(variant -> µs CPU per event) */
const figures = Object.fromEntries(modes.map(mode => [mode, []]));
for (let run = 1; run <= runs; run++) {
  const order = run % 2 === 1 ? modes : [...modes].reverse();
  for (const mode of order) {
    const { cpu, seconds } = runOnce(mode);
    figures[mode].push(cpu);
    console.log(
      `run ${run} ${mode.padEnd(8)} ${seconds.toFixed(0).padStart(4)} s, load average ${load()}`,
    );
  }
}

const variants = [...figures[reference][0].keys()];
const others = modes.filter(mode => mode !== reference);
console.log(`\nµs CPU per event, median of each run's rounds; ratio = mode/${reference} per run`);
console.log(
  `| variant | ${reference} | ${others.map(mode => `${mode} | ${mode}/${reference} (median; per run)`).join(' | ')} |`,
);
console.log(`|---|---|${others.map(() => '---|---|').join('')}`);
const worst = Object.fromEntries(others.map(mode => [mode, 0]));
for (const variant of variants) {
  const ref = figures[reference].map(run => run.get(variant));
  const cells = [`${variant}`, ref.map(v => v?.toFixed(2) ?? '?').join(' ')];
  for (const mode of others) {
    const mine = figures[mode].map(run => run.get(variant));
    const ratios = mine.map((value, i) => value / ref[i]).filter(Number.isFinite);
    const ratio = ratios.length ? median(ratios) : NaN;
    if (/herald/.test(variant) && Number.isFinite(ratio))
      worst[mode] = Math.max(worst[mode], ratio);
    cells.push(
      mine.map(v => v?.toFixed(2) ?? '?').join(' '),
      `${ratio.toFixed(3)} (${ratios.map(r => r.toFixed(2)).join(' ')})`,
    );
  }
  console.log(`| ${cells.join(' | ')} |`);
}
console.log(`load average now ${load()}`);
for (const mode of others) {
  console.log(
    `${mode}/${reference}: the most a herald variant costs, median of the per-run ratios = ${worst[mode].toFixed(3)}x` +
      (mode !== 'sdk' && (mode === 'absent' || reference === 'baseline')
        ? ` (${worst[mode] <= 1.05 ? 'within' : 'above'} the 5% budget)`
        : ''),
  );
}
