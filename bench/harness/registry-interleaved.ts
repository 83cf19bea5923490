// node --expose-gc --import ./scripts/register-ts.mjs bench/harness/registry-interleaved.ts <reference checkout>
//
// registry-passes.ts with both sides of issue 26's comparison in ONE process
// (bench/harness/otel-overhead.mjs, bench `registry`): the app of this
// checkout and the app of the reference checkout (the copy with the
// telemetry compiled out), each with its own lib/, built alternately
// (A B B A A B ..., or B A A B ...), BENCH_APPS of each. On a loaded machine the CPU time of
// the same work moves by ±20% between processes half a minute apart (cache
// and core contention), more than a 5% budget; two apps a second apart in
// one process meet the same machine. Prints one JSON line: per side, the
// figures registry-passes.ts prints. Run with the API absent
// (otel-absent.mjs in NODE_OPTIONS) so both sides load no telemetry.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runMain, setting } from './harness.env.js';
import type { RegistryApp } from './registry-app.js';
import { emptyFigures, measureApp, type RegistryPassFigures } from './registry-figures.js';

const PROVIDERS = setting('BENCH_PROVIDERS', 1000, 20);
const APPS = Math.max(1, setting('BENCH_APPS', 4, 1));
const PASSES = Math.max(1, setting('BENCH_PASSES', 12, 1));

type Start = (providers: number) => Promise<RegistryApp>;

async function main(): Promise<void> {
  const reference = process.argv[2];
  if (!reference) throw new Error('registry-interleaved: give the reference checkout directory');
  const load = async (dir: string): Promise<Start> =>
    (
      (await import(pathToFileURL(path.join(dir, 'bench', 'harness', 'registry-app.ts')).href)) as {
        startRegistryApp: Start;
      }
    ).startRegistryApp;
  const here = fileURLToPath(new URL('../..', import.meta.url));
  const sides = { absent: await load(here), stripped: await load(path.resolve(reference)) };
  const empty = (): RegistryPassFigures => emptyFigures(APPS, PROVIDERS, PASSES);
  const figures = { absent: empty(), stripped: empty() };
  // The process's first app warms up what both sides share (Nest, the
  // loader): BENCH_FIRST=stripped lets the reference have it, and
  // otel-overhead.mjs alternates it between processes.
  const first = process.env.BENCH_FIRST === 'stripped' ? 1 : 0;
  for (let a = 0; a < APPS; a++) {
    // Who goes first alternates: A B, B A, A B, ... (or B A, A B, ...).
    const order =
      (a + first) % 2 === 0 ? (['absent', 'stripped'] as const) : (['stripped', 'absent'] as const);
    for (const side of order) await measureApp(() => sides[side](PROVIDERS), PASSES, figures[side]);
  }
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

runMain('registry-interleaved', main);
