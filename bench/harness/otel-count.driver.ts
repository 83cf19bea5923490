// The process bench/harness/otel-count.mjs runs under callgrind, one of two
// workloads (COUNT_WORKLOAD):
//   bus       a bus on the local transport with one handler; COUNT_EVENTS
//             posts and as many postLocal calls
//   registry  bench:registry's herald app (registry-app.ts: COUNT_EVENTS
//             handlers on as many distinct events, in EventsModule); one
//             postLocal pass and one post pass over every event
// warmed up with the instrumentation off, then, between the "ready" line and
// the "done" line, the counted events, awaited (the parent turns callgrind's
// instrumentation on and off around them). The bus, the transport and the
// hooks come from the checkout this file is in (this one, or the copy with
// the telemetry compiled out).
import { createInterface } from 'node:readline';
import { EventBus } from '../../lib/bus/event-bus.js';
import { silentLogger } from '../../lib/common/logger.js';
import { createTransport } from '../../lib/transports/create-transport.js';
import { startRegistryApp } from './registry-app.js';

const EVENTS = Number(process.env.COUNT_EVENTS ?? 20_000);
const WARMUP = Number(process.env.COUNT_WARMUP ?? 20_000);
const WINDOW = 1000;

const WORKLOAD = process.env.COUNT_WORKLOAD ?? 'bus';
/** registry: `postLocal` or `post` passes alone (COUNT_ONLY), else both. */
const ONLY = process.env.COUNT_ONLY ?? '';

/** The counted work: `events` of each kind, all handled. */
async function busPass(): Promise<(events: number) => Promise<void>> {
  const bus = new EventBus({ logger: silentLogger, transport: await createTransport({}) });
  let handled = 0;
  bus.register(() => {
    handled++;
  }, 'orders');
  await bus.connect();
  bus.start();
  const payload = (i: number): { id: number; name: string; tags: string[] } => ({
    id: i,
    name: 'order-created',
    tags: ['a', 'b'],
  });
  /** `events` posts (WINDOW in flight, each awaited) and as many postLocal calls, all handled. */
  return async events => {
    handled = 0;
    for (let i = 0; i < events; i += WINDOW) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(events, i + WINDOW); j++)
        batch.push(bus.post('orders', 'created', payload(j)));
      await Promise.all(batch);
    }
    await until(() => handled >= events);
    handled = 0;
    for (let i = 0; i < events; i++) bus.postLocal('orders', 'created', payload(i));
    await until(() => handled >= events);
  };
}

/** The registry app of EVENTS handlers: a pass is every event once through postLocal, then through post. */
async function registryPass(): Promise<(events: number) => Promise<void>> {
  if (EVENTS % 10 !== 0)
    throw new Error('COUNT_WORKLOAD=registry: COUNT_EVENTS must be a multiple of 10');
  const registry = await startRegistryApp(EVENTS / 10);
  return async () => {
    if (ONLY !== 'post') await registry.localPass();
    if (ONLY !== 'postLocal') await registry.postPass();
  };
}

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise(resolve => setImmediate(resolve));
}

if (WORKLOAD !== 'bus' && WORKLOAD !== 'registry')
  throw new Error(`COUNT_WORKLOAD must be bus or registry, got ${WORKLOAD}`);
const pass = WORKLOAD === 'bus' ? await busPass() : await registryPass();

// The registry's passes after its first (bench:registry's second pass, and
// the later passes of registry-passes.ts); the bus warms up on WARMUP events.
if (WORKLOAD === 'registry') for (let i = 0; i < 2; i++) await pass(EVENTS);
else await pass(WARMUP);
// The window starts with an empty young generation on both sides, so its
// scavenges come at the same allocations (the checkouts load different modules).
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
gc?.();
// The parent's go-aheads, one line each (they may arrive together).
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async (): Promise<void> => {
  await lines.next();
};
process.stdout.write('ready\n');
await next();
await pass(EVENTS);
process.stdout.write('done\n');
await next();
process.exit(0);
