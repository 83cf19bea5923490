/**
 * `nest-herald/otel`: OpenTelemetry metrics and traces. Nothing to import
 * for the defaults: when `@opentelemetry/api` is installed, the package
 * loads it as the app starts. This subpath sets options, turns it off, and
 * reports FFI runtimes.
 */
export { disableTelemetry, enableTelemetry, observeRuntime } from './otel.loader.js';
export type { HeraldTelemetryOptions } from './otel.options.js';
export { HERALD_METRICS, INSTRUMENTATION_SCOPE, MESSAGING_SYSTEM } from './otel.names.js';
