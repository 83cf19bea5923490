import type * as OtelApi from '@opentelemetry/api';
import { currentInstrumentation, installInstrumentation } from '../common/instrumentation.js';
import { OtelInstrumentation } from './otel.instrumentation.js';
import { resolveTelemetryOptions, type HeraldTelemetryOptions } from './otel.options.js';

/** The OpenTelemetry instrumentation this module installed, if any. */
let installed: OtelInstrumentation | undefined;
let loading: Promise<typeof OtelApi | undefined> | undefined;

/** The one place `@opentelemetry/api` is loaded: a dynamic import, undefined when absent. */
async function importApi(): Promise<typeof OtelApi | undefined> {
  try {
    const module = (await import('@opentelemetry/api')) as typeof OtelApi & {
      default?: typeof OtelApi;
    };
    return typeof module.trace === 'object' ? module : module.default;
  } catch {
    return undefined;
  }
}

/**
 * Whether an SDK registered a tracer or a meter provider: with the API
 * alone (often there as a dependency of a dependency) every span and
 * metric would be a no-op, so nothing is installed and nothing is paid.
 */
function sdkRegistered(api: typeof OtelApi): boolean {
  const tracerProvider = api.trace.getTracerProvider();
  const tracer =
    tracerProvider instanceof api.ProxyTracerProvider
      ? tracerProvider.getDelegate()
      : tracerProvider;
  return (
    tracer.constructor.name !== 'NoopTracerProvider' ||
    api.metrics.getMeterProvider().constructor.name !== 'NoopMeterProvider'
  );
}

/**
 * Called while an app starts (`createTransport`, a microservice server's
 * `listen`, a client's `connect`): when `@opentelemetry/api` can be
 * imported and no telemetry is installed yet, installs it with the default
 * options, provided an SDK registered a tracer or meter provider before.
 * Without the API or an SDK — or with `NEST_HERALD_OTEL=off` — it installs
 * nothing, and buses built afterwards have no hooks at all.
 */
export async function autoloadTelemetry(): Promise<void> {
  if (currentInstrumentation() || process.env.NEST_HERALD_OTEL === 'off') return;
  loading ??= importApi();
  const api = await loading;
  if (api && !currentInstrumentation() && sdkRegistered(api)) {
    install(api, resolveTelemetryOptions());
  }
}

function install(api: typeof OtelApi, settings: ReturnType<typeof resolveTelemetryOptions>): void {
  installed?.shutdown();
  installed = new OtelInstrumentation(api, settings);
  installInstrumentation(installed);
}

/**
 * Installs the OpenTelemetry instrumentation with these options for every
 * bus, server and client built from now on (call it before the app is
 * created; without a call, the defaults are installed as the app starts).
 * Resolves to false when `@opentelemetry/api` is not installed.
 * @throws InvalidOptionsError naming the option, the rule and the value given.
 * @publicApi
 */
export async function enableTelemetry(options: HeraldTelemetryOptions = {}): Promise<boolean> {
  const settings = resolveTelemetryOptions(options);
  const api = await importApi();
  if (!api) return false;
  install(api, settings);
  return true;
}

/** Removes the telemetry: buses, servers and clients built from now on have no hooks. @publicApi */
export function disableTelemetry(): void {
  installed?.shutdown();
  installed = undefined;
  loading = undefined;
  installInstrumentation(undefined);
}

/**
 * Reports an FFI runtime's `stats()` (`calls`, `queued`) as
 * `herald.ffi.calls` / `herald.ffi.queue_depth` with a `runtime`
 * attribute, until the returned function is called. A no-op without the
 * OpenTelemetry instrumentation installed. @publicApi
 */
export function observeRuntime(runtime: { readonly name: string; stats(): object }): () => void {
  if (!installed) return () => undefined;
  return installed.observe({ kind: 'ffi', name: runtime.name, read: () => runtime.stats() });
}
