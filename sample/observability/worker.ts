import { NestFactory } from '@nestjs/core';
import { EventPublisher } from '../../lib/index.js';
import { MiniHttpAdapter } from '../health/mini-http.adapter.js';
import { ObservabilityModule, OrdersListener } from './app.module.js';
import { startTelemetry } from './telemetry.js';

const workerId = Number(process.env.HERALD_WORKER_ID);

export async function runWorker(once: boolean): Promise<void> {
  const meterProvider = startTelemetry();
  const adapter = new MiniHttpAdapter();
  const app = await NestFactory.create(ObservabilityModule, adapter, { logger: ['warn', 'error'] });
  // PORT=0: each worker takes a port the system picks (tests: PORT + 1 may be in use).
  const port = Number(process.env.PORT ?? 3100);
  await app.listen(port === 0 ? 0 : port + workerId);
  const base = `http://127.0.0.1:${adapter.port}`;
  console.log(`worker ${workerId}: GET ${base}/health and ${base}/metrics`);
  const events = app.get(EventPublisher);
  await events.waitUntilReady();
  const ticker =
    workerId === 0
      ? setInterval(() => void events.post('orders', 'created', { at: Date.now() }), 100)
      : undefined;
  const listener = app.get(OrdersListener);
  const close = async (): Promise<void> => {
    clearInterval(ticker);
    await app.close();
    await meterProvider.shutdown();
  };
  process.once('disconnect', () => void close().then(() => process.exit(0)));
  if (!once) return;
  while (listener.handled < 20) await new Promise(resolve => setTimeout(resolve, 50));
  const health = await fetch(`${base}/health`);
  console.log(`worker ${workerId}: /health ${health.status} ${await health.text()}`);
  const text = await (await fetch(`${base}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (
      /^herald_(events_(posted|delivered|handled)_total|queue_high_water|handler_duration_count)/.test(
        line,
      )
    ) {
      console.log(`worker ${workerId}: ${line}`);
    }
  }
  clearInterval(ticker);
  process.send?.({ kind: 'scraped' });
}
