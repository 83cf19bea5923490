// One-off A/B: CPU per event of post -> handler on the local transport.
// main = /work/main's bus; ops = this branch's bus without hooks (what an app
// without @opentelemetry/api runs); sdk = this branch with the OTel SDK
// (metrics read by the Prometheus exporter, spans to a no-op exporter).
import { EventBus as MainBus } from '/work/main/lib/bus/event-bus.ts';
import { LocalTransport as MainLocal } from '/work/main/lib/transports/local/local.transport.ts';
import { silentLogger as mainSilent } from '/work/main/lib/common/logger.ts';
import { EventBus } from '/work/wt/ops/lib/bus/event-bus.ts';
import { LocalTransport } from '/work/wt/ops/lib/transports/local/local.transport.ts';
import { silentLogger } from '/work/wt/ops/lib/common/logger.ts';
import { enableTelemetry } from '/work/wt/ops/lib/otel/index.ts';

const EVENTS = Number(process.env.EVENTS ?? 50_000);
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const WINDOW = 1000;

type Bus = { post(s: string, e: string, d?: unknown): Promise<unknown>; register(h: (d: unknown) => void, s?: string): unknown; connect(): Promise<void>; start(): void };
let count = 0;
async function make(B: new (o: object) => Bus, T: new () => object, logger: object): Promise<Bus> {
  const bus = new B({ transport: new T(), logger });
  const handler = (): void => void count++;
  Object.defineProperty(handler, 'name', { value: 'Listener.onCreated' });
  bus.register(handler, 'orders');
  await bus.connect();
  bus.start();
  return bus;
}

async function run(bus: Bus): Promise<number> {
  count = 0;
  const before = process.cpuUsage();
  let inflight: Promise<unknown>[] = [];
  for (let i = 0; i < EVENTS; i++) {
    inflight.push(bus.post('orders', 'created', { id: i, name: 'order-created', tags: ['a', 'b'] }));
    if (inflight.length >= WINDOW) { await Promise.all(inflight); inflight = []; }
  }
  await Promise.all(inflight);
  while (count < EVENTS) await new Promise(r => setImmediate(r));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / EVENTS; // µs per event
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const only = process.env.ONLY;
  const variants: [string, Bus][] = only === 'main'
    ? [['main', await make(MainBus as never, MainLocal as never, mainSilent)]]
    : [['main', await make(EventBus as never, LocalTransport as never, silentLogger)]];
  if (only === 'sdk') {
    variants.length = 0;
    const { metrics, trace } = await import('@opentelemetry/api');
    const { MeterProvider } = await import('@opentelemetry/sdk-metrics');
    const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus');
    const { TracerProvider, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace');
    const prometheus = new PrometheusExporter({ preventServerStart: true });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [prometheus] }));
    const noop = { export: (_s: unknown, cb: (r: { code: number }) => void) => cb({ code: 0 }), shutdown: async () => undefined };
    trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [process.env.BATCH ? new (await import('@opentelemetry/sdk-trace')).BatchSpanProcessor({ exporter: noop as never }) : new SimpleSpanProcessor({ exporter: noop as never })] }));
    await enableTelemetry({ traces: process.env.TRACES !== '0', metrics: process.env.METRICS !== '0' });
    variants.push(['main', await make(EventBus as never, LocalTransport as never, silentLogger)]);
  }
  for (const [, bus] of variants) await run(bus); // warm-up
  const per: Record<string, number[]> = {};
  const ratios: Record<string, number[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    const got: Record<string, number> = {};
    for (const [name, bus] of order) got[name] = await run(bus);
    for (const [name, v] of Object.entries(got)) {
      (per[name] ??= []).push(v);
      (ratios[name] ??= []).push(v / got.main);
    }
  }
  for (const name of Object.keys(per)) {
    console.log(`${name}: median ${median(per[name]).toFixed(2)} µs CPU/event; median ratio to main ${median(ratios[name]).toFixed(3)}`);
  }
}
void main();
