// What registry-passes.ts and registry-interleaved.ts measure of one
// registry app (registry-app.ts): its start-up, its first postLocal pass and
// `passes` more, its first post pass and `passes` more, each as process CPU
// (every thread, user + sys), summed over the apps of a side.
import { cpuMicros } from './harness.cpu.js';
import type { RegistryApp } from './registry-app.js';

/** What one side prints: CPU µs summed over its apps, and the counts to divide them by. */
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

/** Figures of `apps` apps of `providers` x 10 handlers, nothing measured yet. */
export function emptyFigures(apps: number, providers: number, passes: number): RegistryPassFigures {
  return {
    apps,
    eventsPerPass: providers * 10,
    laterPassesPerApp: passes,
    startupCpu: 0,
    localFirstCpu: 0,
    localLaterCpu: 0,
    asyncFirstCpu: 0,
    asyncLaterCpu: 0,
  };
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

/** One app: started by `start`, its passes, closed; its CPU added to `figures`. */
export async function measureApp(
  start: () => Promise<RegistryApp>,
  passes: number,
  figures: RegistryPassFigures,
): Promise<void> {
  gc();
  let registry!: RegistryApp;
  figures.startupCpu += await cpuOf(async () => {
    registry = await start();
  });
  gc();
  figures.localFirstCpu += await cpuOf(registry.localPass);
  for (let i = 0; i < passes; i++) figures.localLaterCpu += await cpuOf(registry.localPass);
  gc();
  figures.asyncFirstCpu += await cpuOf(registry.postPass);
  for (let i = 0; i < passes; i++) figures.asyncLaterCpu += await cpuOf(registry.postPass);
  await registry.app.close();
}
