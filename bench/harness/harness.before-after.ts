// The before/after benches (bench/*-before-after.ts): another checkout's lib/
// ("before") against this one's ("after") in ONE process, rounds interleaved,
// so both sides share whatever load the machine has.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SMOKE } from './harness.env.js';
import { median } from './harness.stats.js';

/** This checkout's root: the "after" side. */
const HERE = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The "before" checkout: BENCH_BASE, a directory holding another checkout's
 * lib/ next to a node_modules. In smoke mode without it, this checkout
 * itself (after against after): CI then runs the bench's whole path, so it
 * cannot rot while nobody compares anything.
 */
export function beforeBase(): string {
  const base = process.env.BENCH_BASE;
  if (base) return base;
  if (SMOKE) return HERE;
  throw new Error('BENCH_BASE=<directory holding the "before" lib/> is required');
}

/** A module of the "before" checkout, e.g. `lib/index.js`. */
export function importBefore<T>(base: string, file: string): Promise<T> {
  return import(pathToFileURL(join(base, file)).href) as Promise<T>;
}

/** A variant: its name and one measurement (µs of CPU per event). */
export type TimedVariant = readonly [name: string, run: () => Promise<number>];

/** A ratio to print: its label and the two variants, numerator first. */
export type RatioOf = readonly [label: string, numerator: string, denominator: string];

/**
 * Runs every variant once per round, in reverse order every other round,
 * prints each round, then the median (range) of each variant and the median
 * of the per-round ratios asked for (those whose variants both ran). The
 * last line printed is a ratio's: `<label> median N.NNx, per round ...`.
 */
export async function interleave(
  title: string,
  rounds: number,
  variants: readonly TimedVariant[],
  ratios: readonly RatioOf[],
): Promise<Map<string, number[]>> {
  const cpu = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const loadStart = loadavg()[0];
  console.log(`${title}, ${rounds} rounds, load average ${loadStart.toFixed(2)}`);
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of round % 2 ? [...variants].reverse() : variants)
      cpu.get(name)!.push(await run());
    const figures = variants.map(([name]) => `${name} ${cpu.get(name)![round].toFixed(2)}`);
    console.log(`round ${round + 1}: ${figures.join(', ')} µs CPU/event`);
  }
  console.log(
    `\nµs CPU per event, median (range) of ${rounds} rounds; load average ${loadStart.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`,
  );
  const width = Math.max(...variants.map(([name]) => name.length)) + 1;
  for (const [name, values] of cpu)
    console.log(
      `${name.padEnd(width)} ${median(values).toFixed(2)} (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})`,
    );
  for (const [label, a, b] of ratios) {
    const over = cpu.get(a);
    const under = cpu.get(b);
    if (!over || !under) continue;
    const values = over.map((v, i) => v / under[i]);
    console.log(
      `${label.padEnd(20)} median ${median(values).toFixed(2)}x, per round ${values.map(v => v.toFixed(2)).join(' ')}`,
    );
  }
  return cpu;
}
