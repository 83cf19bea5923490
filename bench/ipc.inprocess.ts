// The ipc transport's CPU per delivery with no scheduler in the way: a broker
// and 4 IpcClients in one process (no bus), each client keeping 256 of its
// own ~100-byte posts in flight until it posted POSTS (default 30,000);
// every delivery goes to all 4 and is acked. Prints the process's CPU µs per
// delivery. Under a loaded machine the multi-process bench's rates swing with
// the scheduler; this figure moves far less, so two versions of lib/ can be
// compared by running this file in each tree, alternately:
//   node --import ./scripts/register-ts.mjs bench/ipc.inprocess.ts
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../lib/common/logger.js';
import type { Envelope } from '../lib/interfaces/envelope.interface.js';
import { IpcBroker } from '../lib/transports/ipc/ipc.broker.js';
import { IpcClient } from '../lib/transports/ipc/ipc.client.js';

const WORKERS = 4;
const POSTS = Number(process.env.POSTS ?? 30_000);
const IN_FLIGHT = 256;
const PAD = 'x'.repeat(48);
const ACK = Object.freeze({ outcome: 'ack' as const });

const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-ipc-inprocess-'));
const socketPath = path.join(dir, 's.sock');
const broker = new IpcBroker({ socketPath, workerCount: WORKERS }, { logger: silentLogger });
await broker.listen();
const expected = WORKERS * WORKERS * POSTS;
let delivered = 0;
let finish!: () => void;
const finished = new Promise<void>(resolve => (finish = resolve));
const state = Array.from({ length: WORKERS }, () => ({ sent: 0, back: 0 }));
const occurredAt = new Date().toISOString();
const clients: IpcClient[] = [];
for (let id = 0; id < WORKERS; id++) {
  clients.push(
    new IpcClient({
      socketPath,
      workerId: id,
      window: 10_240,
      postTimeoutMs: 5000,
      maxFrameBytes: 1 << 20,
      maxQueueLength: 10_240,
      logger: silentLogger,
      deliver: delivery => {
        const data = JSON.parse(delivery.envelope.payload) as { w: number };
        delivered++;
        if (data.w === id) {
          state[id].back++;
          pump(id);
        }
        delivery.settle(ACK);
        if (delivered === expected) finish();
      },
    }),
  );
}
await Promise.all(clients.map(client => client.connect()));

function pump(id: number): void {
  const s = state[id];
  const batch: Envelope[] = [];
  while (s.sent < POSTS && s.sent - s.back < IN_FLIGHT) {
    const i = s.sent++;
    batch.push({
      id: `${id}-${i}-0b8c1234-4abc-8def`,
      source: 'bench',
      event: 'e',
      origin: `inprocess/${process.pid}/${id}`,
      occurredAt,
      payload: JSON.stringify({ t: Date.now(), w: id, i, pad: PAD }),
    });
  }
  if (batch.length > 0) void clients[id].publish(batch);
}

const cpuAtStart = process.cpuUsage();
const startedAt = performance.now();
for (let id = 0; id < WORKERS; id++) pump(id);
await finished;
const cpu = process.cpuUsage(cpuAtStart);
const seconds = (performance.now() - startedAt) / 1000;
console.log(
  `ipc in-process: ${delivered} deliveries, ${((cpu.user + cpu.system) / delivered).toFixed(3)} µs CPU each, ${Math.round(delivered / seconds)} deliveries/s`,
);
await Promise.all(clients.map(client => client.close(1000)));
await broker.close();
rmSync(dir, { recursive: true, force: true });
