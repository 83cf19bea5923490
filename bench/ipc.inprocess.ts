// The ipc transport's CPU per delivery with no scheduler in the way: a broker
// and 4 workers in one process, each keeping 256 of its own ~100-byte posts
// in flight until it posted POSTS (default 30,000); every delivery goes to
// all 4 and is acked. Prints the process's CPU µs per delivery. Under a
// loaded machine the multi-process bench's rates swing with the scheduler;
// this figure moves far less, so two versions of lib/ can be compared by
// running this file in each tree, alternately, and herald's path against
// the wire's in one tree:
//   node --import ./scripts/register-ts.mjs bench/ipc.inprocess.ts
// MODE=wire (default): 4 IpcClients, envelopes built by hand with the bus's
//   field sizes (bench:ipc's `wire` variant);
// MODE=bus: 4 EventBus instances over IpcTransport, `post` -> handler
//   (bench:ipc's `herald` variant).
// WARMUP posts per worker (default 5,000) run first, untimed. Instructions
// per delivery, load-independent: BENCH_CALLGRIND=1 valgrind --tool=callgrind
// --instr-atstart=no node ... (instrumentation on for the measured posts only).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EventBus } from '../lib/bus/event-bus.js';
import { silentLogger } from '../lib/common/logger.js';
import { IpcBroker } from '../lib/transports/ipc/ipc.broker.js';
import { IpcClient } from '../lib/transports/ipc/ipc.client.js';
import { IpcTransport } from '../lib/transports/ipc/ipc.transport.js';
import { callgrindInstrumentation } from './harness/harness.callgrind.js';
import { WirePoster } from './ipc.wire-poster.js';

const WORKERS = 4;
const POSTS = Number(process.env.POSTS ?? 30_000);
/** Posts per worker before the measured ones (WARMUP, default 5,000). */
const WARMUP = Number(process.env.WARMUP ?? 5000);
const MODE = process.env.MODE === 'bus' ? 'bus' : 'wire';
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 256);
const PAD = 'x'.repeat(48);
const ACK = Object.freeze({ outcome: 'ack' as const });

interface Data {
  t: number;
  w: number;
  i: number;
  pad: string;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-ipc-inprocess-'));
const socketPath = path.join(dir, 's.sock');
const broker = new IpcBroker({ socketPath, workerCount: WORKERS }, { logger: silentLogger });
await broker.listen();
let posts = 0;
let expected = 0;
let delivered = 0;
let finish = (): void => undefined;
const state = Array.from({ length: WORKERS }, () => ({ sent: 0, back: 0 }));

/** Each worker's way to post and to close. */
const posters: { send(data: Data): void; close(): Promise<void> }[] = [];

function received(id: number, data: Data): void {
  delivered++;
  if (data.w === id) {
    state[id].back++;
    pump(id);
  }
  if (delivered === expected) finish();
}

for (let id = 0; id < WORKERS; id++) {
  if (MODE === 'bus') {
    const transport = new IpcTransport({
      socketPath,
      workerId: id,
      workerCount: WORKERS,
      hostBroker: false,
      failover: false,
    });
    const bus = new EventBus({ logger: silentLogger, transport });
    bus.register(data => received(id, data as Data), 'bench', 'e');
    await bus.connect();
    bus.start();
    posters.push({
      send: data => void bus.post('bench', 'e', data).catch(() => undefined),
      close: () => bus.close({ timeoutMs: 1000 }),
    });
  } else {
    const client = new IpcClient({
      socketPath,
      workerId: id,
      window: 10_240,
      postTimeoutMs: 5000,
      maxFrameBytes: 1 << 20,
      maxQueueLength: 10_240,
      logger: silentLogger,
      deliver: delivery => {
        received(id, JSON.parse(delivery.envelope.payload) as Data);
        delivery.settle(ACK);
      },
    });
    await client.connect();
    const poster = new WirePoster(batch => client.publish(batch), 'bench', 'e');
    posters.push({
      send: data => poster.post(JSON.stringify(data)),
      close: () => client.close(1000),
    });
  }
}

function pump(id: number): void {
  const s = state[id];
  const poster = posters[id];
  while (s.sent < posts && s.sent - s.back < IN_FLIGHT) {
    poster.send({ t: Date.now(), w: id, i: s.sent++, pad: PAD });
  }
}

/** Each worker posts `count` more and waits for every delivery of them. */
async function phase(count: number): Promise<void> {
  posts += count;
  expected += WORKERS * WORKERS * count;
  const finished = new Promise<void>(resolve => (finish = resolve));
  for (let id = 0; id < WORKERS; id++) pump(id);
  await finished;
}

// Untimed first: the optimizing compiler's work on the path is not the path's cost.
await phase(WARMUP);
const deliveredBefore = delivered;
await callgrindInstrumentation('on');
const cpuAtStart = process.cpuUsage();
const startedAt = performance.now();
await phase(POSTS);
const cpu = process.cpuUsage(cpuAtStart);
const seconds = (performance.now() - startedAt) / 1000;
await callgrindInstrumentation('off');
const measured = delivered - deliveredBefore;
console.log(
  `ipc in-process (${MODE}): ${measured} deliveries, ${((cpu.user + cpu.system) / measured).toFixed(3)} µs CPU each, ${Math.round(measured / seconds)} deliveries/s`,
);
await Promise.all(posters.map(poster => poster.close()));
await broker.close();
rmSync(dir, { recursive: true, force: true });
