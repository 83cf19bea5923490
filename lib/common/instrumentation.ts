import type { Instrumentation } from '../interfaces/instrumentation.interface.js';

/**
 * The process's one telemetry plug (OpenTelemetry's API is one per process
 * too). Empty by default: a bus built while it is empty has no hooks and
 * pays nothing for them. `nest-herald/otel` fills it.
 */
let installed: Instrumentation | undefined;

/** Installs (or, with `undefined`, removes) the telemetry for buses built from now on. */
export function installInstrumentation(instrumentation: Instrumentation | undefined): void {
  installed = instrumentation;
}

/** The installed telemetry, if any. */
export function currentInstrumentation(): Instrumentation | undefined {
  return installed;
}
