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
import { cpuMicros } from './harness.cpu.js';
import { SMOKE, runMain, setting } from './harness.env.js';
import { startRegistryApp, type RegistryApp } from './registry-app.js';

const PROVIDERS = setting('BENCH_PROVIDERS', 1000, 20);
const APPS = Math.max(1, setting('BENCH_APPS', 10, 2));
/** Passes of each kind after the first, per app. */
const PASSES = Math.max(1, setting('BENCH_PASSES', 6, 1));

/** What one process prints: CPU µs summed over its apps, and the counts to divide them by. */
export interface RegistryPassFigures {
  apps: number;
  eventsPerPass: number;
  laterPassesPerApp: number;
  startupCpu: number;
  localFirstCpu: number;
  localLaterCpu: number;
  asyncFirstCpu: number;
  asyncLaterCpu: number;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Process CPU µs of `run`. */
async function cpuOf(run: () => Promise<unknown>): Promise<number> {
  const before = cpuMicros();
  await run();
  return cpuMicros() - before;
}

async function main(): Promise<void> {
  const figures: RegistryPassFigures = {
    apps: APPS,
    eventsPerPass: PROVIDERS * 10,
    laterPassesPerApp: PASSES,
    startupCpu: 0,
    localFirstCpu: 0,
    localLaterCpu: 0,
    asyncFirstCpu: 0,
    asyncLaterCpu: 0,
  };
  for (let a = 0; a < APPS; a++) {
    gc();
    let registry!: RegistryApp;
    figures.startupCpu += await cpuOf(async () => {
      registry = await startRegistryApp(PROVIDERS);
    });
    gc();
    figures.localFirstCpu += await cpuOf(registry.localPass);
    for (let i = 0; i < PASSES; i++) figures.localLaterCpu += await cpuOf(registry.localPass);
    gc();
    figures.asyncFirstCpu += await cpuOf(registry.postPass);
    for (let i = 0; i < PASSES; i++) figures.asyncLaterCpu += await cpuOf(registry.postPass);
    await registry.app.close();
  }
  if (SMOKE)
    console.log(`registry-passes: ${APPS} apps of ${figures.eventsPerPass} handlers, smoke`);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

runMain('registry-passes', main);
