// BENCH_OTEL: what OpenTelemetry a bench runs with (issue 26's overhead
// figures; bench/harness/otel-overhead.mjs runs a bench in each mode):
//   unset   as the environment is (the API is a devDependency, no SDK: herald
//           installs nothing)
//   absent  `@opentelemetry/*` cannot be imported (needs
//           `--import ./bench/harness/otel-absent.mjs`, which otel-overhead.mjs
//           puts in NODE_OPTIONS, so child processes get it too); checked here
//   off     NEST_HERALD_OTEL=off: the API is there, herald's loader skips it
//   sdk     the real SDK and herald's telemetry attached in the bench's main
//           process before the app starts (otel-sdk.ts: spans batched and
//           dropped, W3C propagator, AsyncLocalStorage context, Prometheus
//           exporter scraped every second); in its worker processes too when
//           NODE_OPTIONS has otel-sdk.preload.ts (otel-overhead.mjs puts it
//           there), else they run without it.
export type OtelMode = 'env' | 'absent' | 'off' | 'sdk';

/** The mode BENCH_OTEL asks for. */
export function otelMode(): OtelMode {
  const value = process.env.BENCH_OTEL ?? '';
  if (value === '') return 'env';
  if (value === 'absent' || value === 'off' || value === 'sdk') return value;
  throw new Error(`BENCH_OTEL must be absent, off or sdk, got ${JSON.stringify(value)}`);
}

/**
 * Sets up what BENCH_OTEL asks for, before the bench's main runs.
 * @returns what to call once it ended (sdk: shuts the SDK down), and one line saying what was attached.
 */
export async function attachOtel(): Promise<{ line: string; stop(): Promise<void> }> {
  const mode = otelMode();
  const none = async (): Promise<void> => undefined;
  if (mode === 'env') return { line: '', stop: none };
  if (mode === 'off') {
    process.env.NEST_HERALD_OTEL = 'off';
    return { line: 'BENCH_OTEL=off: NEST_HERALD_OTEL=off, herald loads no telemetry', stop: none };
  }
  if (mode === 'absent') {
    const importable = await import('@opentelemetry/api').then(
      () => true,
      () => false,
    );
    if (importable) {
      throw new Error(
        'BENCH_OTEL=absent needs node --import ./bench/harness/otel-absent.mjs (otel-overhead.mjs adds it)',
      );
    }
    return { line: 'BENCH_OTEL=absent: @opentelemetry/* cannot be imported', stop: none };
  }
  // Loaded only here: the absent and stripped processes load nothing of lib/otel for the bench.
  const { attachSdk } = await import('./otel-sdk.js');
  return attachSdk();
}
