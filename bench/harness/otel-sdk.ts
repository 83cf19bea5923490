// The real OpenTelemetry SDK as a bench attaches it (BENCH_OTEL=sdk): a
// tracer provider (every span batched to an exporter that drops it), the W3C
// propagator, the AsyncLocalStorage context manager, a meter provider read by
// the Prometheus exporter over HTTP, scraped once a second as a Prometheus
// server would (more often than its usual 15 s) whenever the loop yields to
// timers, and herald's telemetry installed (enableTelemetry: a bench that
// builds an EventBus by hand, as ipc's and tiered's workers do, never passes
// through the autoload of createTransport). Once per process: the main
// process through harness.otel.ts, every process of a run through
// otel-sdk.preload.ts (worker processes included).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { enableTelemetry } from '../../lib/otel/index.js';

/** What attachSdk set up: one line saying so, and how to end it. */
export interface AttachedSdk {
  line: string;
  /** Spans exported and scrapes so far, one line. */
  summary(): string;
  stop(): Promise<void>;
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

/** The process's one attachment (a preload and the harness both ask for it). */
const ATTACHED = Symbol.for('nest-herald.bench.otel-sdk');
type WithSdk = typeof globalThis & { [ATTACHED]?: Promise<AttachedSdk> };

/** Attaches the SDK and herald's telemetry in this process, once; later calls get the same. */
export function attachSdk(): Promise<AttachedSdk> {
  const global = globalThis as WithSdk;
  global[ATTACHED] ??= attach();
  return global[ATTACHED];
}

async function attach(): Promise<AttachedSdk> {
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
  // The exporter's handler on a server of our own, unreferenced: a worker
  // process or a bench that ends by itself must not be kept alive by it.
  const prometheus = new prometheusModule.PrometheusExporter({ preventServerStart: true });
  const server = http.createServer((request, response) =>
    prometheus.getMetricsRequestHandler(request, response),
  );
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const { port } = server.address() as AddressInfo;
  const meterProvider = new sdkMetrics.MeterProvider({ readers: [prometheus] });
  api.metrics.setGlobalMeterProvider(meterProvider);
  if (!(await enableTelemetry())) throw new Error('BENCH_OTEL=sdk: @opentelemetry/api not found');
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
  const summary = (): string =>
    `BENCH_OTEL=sdk (pid ${process.pid}): ${exported} span(s) exported, ${scrapes} scrape(s), last ${scrapedBytes} B of metrics` +
    (scrapeError ? `; a scrape failed: ${scrapeError}` : '');
  return {
    summary,
    line: `BENCH_OTEL=sdk (pid ${process.pid}): tracer provider (batched, dropped), W3C propagator, AsyncLocalStorage context, Prometheus exporter on :${port} scraped every 1 s, herald's telemetry enabled`,
    stop: async () => {
      clearInterval(timer);
      await tracerProvider.forceFlush();
      // A bench whose timed part never yields to timers (bench:local's) is scraped here at least.
      scrapedBytes = await scrape(port);
      scrapes++;
      console.log(summary());
      await new Promise<void>(resolve => server.close(() => resolve()));
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}
