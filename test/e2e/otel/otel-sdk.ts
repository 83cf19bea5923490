// The real OpenTelemetry SDK, as an app registers it: a tracer provider with
// an in-memory exporter, the W3C propagator, the AsyncLocalStorage context
// manager, and a meter provider read by the Prometheus exporter over HTTP.
import http from 'node:http';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import { freePort } from '../../helpers/free-port.js';

export interface TestSdk {
  readonly exporter: InMemorySpanExporter;
  spans(): ReadableSpan[];
  /** GET /metrics of the Prometheus exporter, over real HTTP. */
  scrape(): Promise<string>;
  shutdown(): Promise<void>;
}

export async function startSdk(): Promise<TestSdk> {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(tracerProvider);
  const port = await freePort();
  const prometheus = new PrometheusExporter({ port, host: '127.0.0.1', preventServerStart: true });
  await prometheus.startServer();
  const meterProvider = new MeterProvider({ readers: [prometheus] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    exporter,
    spans: () => exporter.getFinishedSpans(),
    scrape: () =>
      new Promise<string>((resolve, reject) => {
        // node:http without keep-alive: no socket outlives the test.
        const request = http.get(
          { host: '127.0.0.1', port, path: '/metrics', agent: false },
          response => {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (body += chunk));
            response.on('end', () => resolve(body));
          },
        );
        request.on('error', reject);
      }),
    shutdown: async () => {
      await prometheus.stopServer();
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/** The value of one Prometheus sample whose line starts with `name{` and has all `labels`. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return NaN;
}
