// BENCH_OTEL: what OpenTelemetry a bench runs with (issue 26's overhead
// figures; bench/harness/otel-overhead.mjs runs a bench in each mode):
//   unset   as the environment is (the API is a devDependency, no SDK: herald
//           installs nothing)
//   absent  `@opentelemetry/*` cannot be imported (needs
//           `--import ./bench/harness/otel-absent.mjs`, which otel-overhead.mjs
//           puts in NODE_OPTIONS, so child processes get it too); checked here
//   off     NEST_HERALD_OTEL=off: the API is there, herald's loader skips it
//   sdk     the real SDK attached in the bench's main process before the app
//           starts: a tracer provider (every span batched to an exporter that
//           drops it), the W3C propagator, the AsyncLocalStorage context
//           manager, a meter provider read by the Prometheus exporter over
//           HTTP, scraped once a second as a Prometheus server would (more
//           often than its usual 15 s) whenever the loop yields to timers
//           (bench:local's timed part never does: microtasks only), and once
//           at the end. Child processes run without it.
import http from 'node:http';
import { freePort } from '../../test/helpers/free-port.js';

export type OtelMode = 'env' | 'absent' | 'off' | 'sdk';

/** The mode BENCH_OTEL asks for. */
export function otelMode(): OtelMode {
  const value = process.env.BENCH_OTEL ?? '';
  if (value === '') return 'env';
  if (value === 'absent' || value === 'off' || value === 'sdk') return value;
  throw new Error(`BENCH_OTEL must be absent, off or sdk, got ${JSON.stringify(value)}`);
}

function scrape(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      { host: '127.0.0.1', port, path: '/metrics', agent: false },
      response => {
        let bytes = 0;
        response.on('data', (chunk: Buffer) => (bytes += chunk.length));
        response.on('end', () => resolve(bytes));
      },
    );
    request.on('error', reject);
  });
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
  const [api, hooks, core, prometheusModule, sdkMetrics, sdkTrace] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/exporter-prometheus'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/sdk-trace'),
  ]);
  let exported = 0;
  const tracerProvider = new sdkTrace.TracerProvider({
    spanProcessors: [
      new sdkTrace.BatchSpanProcessor({
        exporter: {
          export: (spans, done) => {
            exported += spans.length;
            done({ code: core.ExportResultCode.SUCCESS });
          },
          shutdown: async () => undefined,
        },
        maxQueueSize: 65_536,
        maxExportBatchSize: 2048,
        scheduledDelayMillis: 200,
      }),
    ],
  });
  api.context.setGlobalContextManager(new hooks.AsyncLocalStorageContextManager().enable());
  api.propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  api.trace.setGlobalTracerProvider(tracerProvider);
  const port = await freePort();
  const prometheus = new prometheusModule.PrometheusExporter({
    port,
    host: '127.0.0.1',
    preventServerStart: true,
  });
  await prometheus.startServer();
  const meterProvider = new sdkMetrics.MeterProvider({ readers: [prometheus] });
  api.metrics.setGlobalMeterProvider(meterProvider);
  let scrapes = 0;
  let scrapedBytes = 0;
  let scrapeError: string | undefined;
  const timer = setInterval(() => {
    scrape(port).then(
      bytes => {
        scrapes++;
        scrapedBytes = bytes;
      },
      (error: unknown) => {
        scrapeError = error instanceof Error ? error.message : String(error);
      },
    );
  }, 1000);
  timer.unref();
  return {
    line: `BENCH_OTEL=sdk: tracer provider (batched, dropped), W3C propagator, AsyncLocalStorage context, Prometheus exporter on :${port} scraped every 1 s`,
    stop: async () => {
      clearInterval(timer);
      await tracerProvider.forceFlush();
      // A bench whose timed part never yields to timers (bench:local's) is scraped here at least.
      scrapedBytes = await scrape(port);
      scrapes++;
      console.log(
        `BENCH_OTEL=sdk: ${exported} span(s) exported, ${scrapes} scrape(s), last ${scrapedBytes} B of metrics` +
          (scrapeError ? `; a scrape failed: ${scrapeError}` : ''),
      );
      await prometheus.stopServer();
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}
