// The OpenTelemetry SDK of one worker: started before the Nest app, so
// nest-herald finds the providers when EventsModule starts. The Prometheus
// exporter runs no server of its own: MetricsController serves its text.
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

export const prometheus = new PrometheusExporter({ preventServerStart: true });

export function startTelemetry(): MeterProvider {
  const provider = new MeterProvider({ readers: [prometheus] });
  metrics.setGlobalMeterProvider(provider);
  return provider;
}
