// The rounds of a bench: every variant runs once per round, interleaved
// (ABBA: odd rounds in order, even rounds reversed, so no variant always runs
// first or last), timed with wall clock and CPU of every Node process of the
// run; then, per variant, the median and range over the rounds, and per
// comparison the median and range of the per-round ratios. The last line
// printed is the headline comparison, `herald/<peer> = N.Nx`.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { cpuMicros } from './harness.cpu.js';
import { SMOKE, selectVariants } from './harness.env.js';
import { formatMs, formatRate, formatRatio, median, quantile, range } from './harness.stats.js';

/** What the timed part of one variant's round did. */
export interface RunResult {
  /** Events (or calls) delivered in the timed part; must be above 0. */
  events: number;
  /** CPU µs the run's child processes used in the timed part (each reports its own). */
  childCpuMicros?: number;
  /** Seconds the events were counted over, when the session times itself (default: run()'s wall time). */
  seconds?: number;
  /** Latencies of some or all of the events, ms. */
  latencyMs?: number[];
}

/** One round of one variant: set up, warmed up and torn down outside the timed part. */
export interface Session {
  warmUp?(): Promise<void>;
  /** The timed part. */
  run(): Promise<RunResult>;
  /** Latencies measured apart, after run() and untimed (e.g. one event at a time), ms. */
  latency?(): Promise<number[]>;
  teardown?(): Promise<void>;
}

export interface Variant {
  name: string;
  setup(): Promise<Session>;
}

/** herald's variant against a peer's; several peers: the best of them in each round. */
export interface Comparison {
  /** `herald/<peer>`, possibly with a qualifier for the secondary comparisons. */
  label: string;
  herald: string;
  peer: string | string[];
}

export interface BenchSpec {
  /** e.g. `bench:pg`; names the run in its output and in a failure. */
  title: string;
  /** One line on what the figures are (sizes, windows, counts). */
  description: string;
  /** What one event is called in the output: events (default) or calls. */
  unit?: string;
  /** Latencies printed in ms (default) or µs. */
  latencyUnit?: 'ms' | 'µs';
  rounds: number;
  variants: Variant[];
  /**
   * The last one is the headline, printed as the last line. None only for a
   * bench with no peer (the leak check), which prints its own verdict last.
   */
  comparisons: Comparison[];
  /** After each round (every variant ran once), untimed: e.g. a memory mark. */
  afterRound?(round: number): Promise<void>;
  /** After the rounds: releases what the variants share. */
  close?(): Promise<void>;
  /** After the rounds: further figures (lines) printed before the comparisons. */
  extra?(): Promise<string[]>;
}

export interface Figure {
  rate: number;
  /** µs of CPU (all Node processes) per delivered event. */
  cpuPerEvent: number;
  p50: number;
  p99: number;
}

/**
 * A variant's round must end within this, or the bench fails instead of
 * hanging CI. A round's setup may start worker processes that each compile
 * the TypeScript they import (tiered starts 4 one after another, with the
 * SDK loaded in each under otel-overhead's sdk smoke): at a load average of
 * 25–40 on 2 cores that took over 60 s, so the smoke limit is 180 s.
 */
const ROUND_TIMEOUT_MS = SMOKE ? 180_000 : 600_000;

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function measureOnce(variant: Variant): Promise<Figure> {
  const session = await variant.setup();
  let result: RunResult;
  let seconds: number;
  let ownCpu: number;
  let latencies: number[] | undefined;
  try {
    await session.warmUp?.();
    (globalThis as { gc?: () => void }).gc?.();
    const cpuBefore = cpuMicros();
    const started = performance.now();
    result = await session.run();
    const wall = (performance.now() - started) / 1000;
    ownCpu = cpuMicros() - cpuBefore;
    seconds = result.seconds ?? wall;
    latencies = result.latencyMs ?? (await session.latency?.());
  } catch (error) {
    // The failure is what counts; a teardown that hangs after it must not hide it.
    await within(Promise.resolve(session.teardown?.()), 5000, 'teardown').catch(() => undefined);
    throw error;
  }
  await session.teardown?.();
  if (!(result.events > 0) || !Number.isFinite(result.events))
    throw new Error(`${variant.name} delivered ${result.events} events`);
  const sorted = latencies ? [...latencies].sort((a, b) => a - b) : [];
  return {
    rate: result.events / seconds,
    cpuPerEvent: (ownCpu + (result.childCpuMicros ?? 0)) / result.events,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
  };
}

const loadAverage = (): string =>
  os
    .loadavg()
    .map(n => n.toFixed(2))
    .join(' ');

/** Runs the rounds, prints per-round figures, the per-variant summary and the comparisons. */
export async function runBench(all: BenchSpec): Promise<Map<string, Figure[]>> {
  // BENCH_VARIANTS (harness.env.ts): some variants, and the comparisons among them.
  const variants = selectVariants(all.variants);
  const spec: BenchSpec = {
    ...all,
    variants,
    comparisons: all.comparisons.filter(c =>
      [c.herald, c.peer].flat().every(name => variants.some(v => v.name === name)),
    ),
  };
  const unit = spec.unit ?? 'events';
  const scale = spec.latencyUnit === 'µs' ? 1000 : 1;
  const latencyUnit = spec.latencyUnit ?? 'ms';
  console.log(
    `${spec.title}${SMOKE ? ' (SMOKE: a fraction of a second per variant, figures meaningless)' : ''}: ${spec.description}`,
  );
  console.log(
    `${spec.rounds} interleaved round(s) of ${spec.variants.length} variants, node ${process.version}, ` +
      `${os.cpus().length} CPUs, load average ${loadAverage()}; CPU = user+sys of every Node process of the run`,
  );
  const figures = new Map<string, Figure[]>(spec.variants.map(v => [v.name, []]));
  const width = Math.max(...spec.variants.map(v => v.name.length));
  const latencyText = (f: Figure): string =>
    Number.isFinite(f.p50)
      ? `   p50 ${formatMs(f.p50 * scale)} / p99 ${formatMs(f.p99 * scale)} ${latencyUnit}`
      : '';
  try {
    for (let round = 1; round <= spec.rounds; round++) {
      const order = round % 2 === 1 ? spec.variants : [...spec.variants].reverse();
      for (const variant of order) {
        const figure = await within(
          measureOnce(variant),
          ROUND_TIMEOUT_MS,
          `${variant.name} (round ${round})`,
        );
        figures.get(variant.name)!.push(figure);
        console.log(
          `round ${round}  ${variant.name.padEnd(width)}  ${formatRate(figure.rate).padStart(9)} ${unit}/s  ` +
            `${figure.cpuPerEvent.toFixed(2).padStart(7)} µs CPU/${unit.replace(/s$/, '')}${latencyText(figure)}`,
        );
      }
      await spec.afterRound?.(round);
    }
  } finally {
    await spec.close?.();
  }

  console.log(`\nmedian (range) over ${spec.rounds} round(s); load average now ${loadAverage()}`);
  console.log(
    `| variant | ${unit}/s | µs CPU/${unit.replace(/s$/, '')} | p50 / p99 ${latencyUnit} |`,
  );
  console.log('|---|---|---|---|');
  for (const variant of spec.variants) {
    const list = figures.get(variant.name)!;
    const rates = list.map(f => f.rate);
    const cpus = list.map(f => f.cpuPerEvent);
    const [rateLow, rateHigh] = range(rates);
    const [cpuLow, cpuHigh] = range(cpus);
    const p50 = median(list.map(f => f.p50));
    const latency = Number.isFinite(p50)
      ? `${formatMs(p50 * scale)} / ${formatMs(median(list.map(f => f.p99)) * scale)}`
      : '';
    console.log(
      `| ${variant.name} | ${formatRate(median(rates))} (${formatRate(rateLow)}–${formatRate(rateHigh)}) | ` +
        `${median(cpus).toFixed(2)} (${cpuLow.toFixed(2)}–${cpuHigh.toFixed(2)}) | ${latency} |`,
    );
  }
  for (const line of (await spec.extra?.()) ?? []) console.log(line);

  const headline = spec.comparisons.at(-1);
  for (const comparison of spec.comparisons) {
    const ours = figures.get(comparison.herald);
    const peers = [comparison.peer].flat().map(name => figures.get(name));
    if (!ours || peers.some(p => !p))
      throw new Error(`comparison ${comparison.label} names a variant that did not run`);
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    for (let round = 0; round < spec.rounds; round++) {
      const best = peers.map(p => p![round]).reduce((a, b) => (b.rate > a.rate ? b : a));
      ratios.push(ours[round].rate / best.rate);
      cpuRatios.push(best.cpuPerEvent / ours[round].cpuPerEvent);
    }
    if (ratios.some(r => !Number.isFinite(r) || r <= 0))
      throw new Error(`comparison ${comparison.label} has no finite ratio: ${ratios.join(', ')}`);
    const [low, high] = range(ratios);
    const [cpuLow, cpuHigh] = range(cpuRatios);
    console.log(
      `${comparison.label}: ${comparison.herald} / ${[comparison.peer].flat().join(' or ')} per round ` +
        `${ratios.map(formatRatio).join(' ')}: median ${formatRatio(median(ratios))} ` +
        `(range ${formatRatio(low)}–${formatRatio(high)}); ` +
        `CPU per ${unit.replace(/s$/, '')} peer/herald ` +
        `median ${formatRatio(median(cpuRatios))} (range ${formatRatio(cpuLow)}–${formatRatio(cpuHigh)})`,
    );
    if (comparison === headline) {
      // Exactly `herald/<peer> = N.Nx`, last: scripts and CI read it.
      console.log(`${comparison.label} = ${median(ratios).toFixed(1)}x`);
    }
  }
  return figures;
}
