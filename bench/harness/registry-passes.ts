// node --expose-gc --import ./scripts/register-ts.mjs bench/harness/registry-passes.ts
//
// bench:registry's herald workload, repeated so that CPU time can judge a
// few percent (issue 26's overhead check, bench/harness/otel-overhead.mjs):
// a pass over bench:registry's 10,000 events costs 1–5 ms of CPU, too short
// for one process's CPU time to tell 5% from noise. Here one process builds
// BENCH_APPS fresh apps in turn (registry-app.ts: registry.bench.ts's herald
// app, 1000 providers x 10 @OnEvent methods on 10,000 distinct events), and
// in each runs the first postLocal pass, BENCH_PASSES more, the first post
// pass and BENCH_PASSES more, then closes it. It prints, as one JSON line,
// the process CPU (every thread, user + sys) of each kind of pass summed
// over all the apps, and of the apps' start-ups (createApplicationContext,
// init included). BENCH_OTEL as every bench (harness.otel.ts).
import { SMOKE, runMain, setting } from './harness.env.js';
import { startRegistryApp } from './registry-app.js';
import { emptyFigures, measureApp } from './registry-figures.js';

const PROVIDERS = setting('BENCH_PROVIDERS', 1000, 20);
const APPS = Math.max(1, setting('BENCH_APPS', 10, 2));
/** Passes of each kind after the first, per app. */
const PASSES = Math.max(1, setting('BENCH_PASSES', 6, 1));

async function main(): Promise<void> {
  const figures = emptyFigures(APPS, PROVIDERS, PASSES);
  for (let a = 0; a < APPS; a++)
    await measureApp(() => startRegistryApp(PROVIDERS), PASSES, figures);
  if (SMOKE)
    console.log(`registry-passes: ${APPS} apps of ${figures.eventsPerPass} handlers, smoke`);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

runMain('registry-passes', main);
