// The process bench/harness/otel-count.mjs runs under callgrind: a bus on the
// local transport with one handler; `post` and `postLocal` warmed up with the
// instrumentation off, then, between the "ready" line and the "done" line,
// COUNT_EVENTS of each, awaited (the parent turns callgrind's
// instrumentation on and off around them). The bus, the transport and the
// hooks come from the checkout this file is in (this one, or the copy with
// the telemetry compiled out).
import { createInterface } from 'node:readline';
import { EventBus } from '../../lib/bus/event-bus.js';
import { silentLogger } from '../../lib/common/logger.js';
import { createTransport } from '../../lib/transports/create-transport.js';

const EVENTS = Number(process.env.COUNT_EVENTS ?? 20_000);
const WARMUP = Number(process.env.COUNT_WARMUP ?? 20_000);
const WINDOW = 1000;

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

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise(resolve => setImmediate(resolve));
}

/** `events` posts (WINDOW in flight, each awaited) and as many postLocal calls, all handled. */
async function pass(events: number): Promise<void> {
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
}

await pass(WARMUP);
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
await bus.close();
process.exit(0);
