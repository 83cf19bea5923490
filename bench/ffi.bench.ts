// npm run bench:ffi — echo round trips/s and p50/p99 latency of a native
// runtime called through nest-herald/ffi, with 1, 64 and 1024 calls in
// flight at 16 B and 4 KiB, in one run against:
//   (a) uds:    the same echo over a unix domain socket to a separate process,
//               4-byte big-endian length-prefixed frames, many requests in
//               flight on one pipelining connection (the original's comparison)
//   (b) koffi:  koffi's `.async()` call of a plain C echo (libuv thread pool)
//   (c) worker: worker_threads postMessage to an echoing worker
// Each cell is the best of BENCH_ROUNDS (default 3) runs of BENCH_MS
// (default 500 ms) after a short warm-up: the machine is shared and noisy.
// Last line: herald/uds at 4 KiB with 64 in flight.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { NativeRuntime } from '../lib/ffi/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'ffi', 'build');
const DURATION_MS = Number(process.env.BENCH_MS ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP_MS = 200;
const SIZES = [16, 4096];
const IN_FLIGHT = [1, 64, 1024];

type Call = (request: Buffer) => Promise<Buffer>;

interface Peer {
  name: string;
  call: Call;
  close(): Promise<void> | void;
}

interface Result {
  callsPerSecond: number;
  p50: number;
  p99: number;
}

/** Closed loop: `inFlight` callers each issue the next call when the previous answers. */
async function measure(call: Call, size: number, inFlight: number): Promise<Result> {
  const request = Buffer.alloc(size, 0x41);
  const run = async (ms: number, latencies?: number[]): Promise<number> => {
    const end = performance.now() + ms;
    let calls = 0;
    const caller = async (): Promise<void> => {
      while (performance.now() < end) {
        const start = performance.now();
        const answer = await call(request);
        if (answer.length !== size)
          throw new Error(`echo of ${size} bytes answered ${answer.length}`);
        latencies?.push(performance.now() - start);
        calls++;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: inFlight }, caller));
    return calls / ((performance.now() - started) / 1000);
  };
  await run(WARMUP_MS);
  let best: Result | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    (globalThis as { gc?: () => void }).gc?.();
    const latencies: number[] = [];
    const callsPerSecond = await run(DURATION_MS, latencies);
    latencies.sort((a, b) => a - b);
    const at = (q: number): number =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] * 1000;
    if (!best || callsPerSecond > best.callsPerSecond)
      best = { callsPerSecond, p50: at(0.5), p99: at(0.99) };
  }
  return best!;
}

function herald(): Peer {
  const runtime = NativeRuntime.load(path.join(FIXTURES, 'libherald_echo.so'), {
    cfg: `threads=${process.env.BENCH_FFI_THREADS ?? 1}`,
    name: 'echo',
  });
  return { name: 'herald', call: request => runtime.call(request), close: () => runtime.close() };
}

const UDS_SERVER = `
const net = require('node:net');
const server = net.createServer(socket => {
  let pending = Buffer.alloc(0);
  socket.on('data', chunk => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let offset = 0;
    const out = [];
    while (pending.length - offset >= 4) {
      const length = pending.readUInt32BE(offset);
      if (pending.length - offset < 4 + length) break;
      out.push(pending.subarray(offset, offset + 4 + length));
      offset += 4 + length;
    }
    pending = pending.subarray(offset);
    if (out.length) socket.write(out.length === 1 ? out[0] : Buffer.concat(out));
  });
});
server.listen(process.argv[1], () => process.stdout.write('ready\\n'));
`;

/** (a) A separate process echoing length-prefixed frames; one pipelining connection. */
async function uds(): Promise<Peer & { child: ChildProcess }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-uds-'));
  const socketPath = path.join(dir, 'echo.sock');
  const child = spawn(process.execPath, ['-e', UDS_SERVER, socketPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Never leave the server behind, even when the bench fails.
  process.once('exit', () => child.kill());
  await once(child.stdout!, 'data');
  const socket = net.connect(socketPath);
  await once(socket, 'connect');
  socket.setNoDelay(true);
  const waiting: ((answer: Buffer) => void)[] = [];
  let head = 0;
  let pending = Buffer.alloc(0);
  socket.on('data', chunk => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let offset = 0;
    while (pending.length - offset >= 4) {
      const length = pending.readUInt32BE(offset);
      if (pending.length - offset < 4 + length) break;
      waiting[head++](pending.subarray(offset + 4, offset + 4 + length));
      offset += 4 + length;
    }
    if (head > 4096 && head * 2 > waiting.length) {
      waiting.splice(0, head);
      head = 0;
    }
    pending = pending.subarray(offset);
  });
  // Frames written in one tick leave in one write.
  let corked = false;
  const call: Call = request =>
    new Promise(resolve => {
      waiting.push(resolve);
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(() => {
          corked = false;
          socket.uncork();
        });
      }
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(request.length);
      socket.write(header);
      socket.write(request);
    });
  return {
    name: 'uds',
    child,
    call,
    close: async () => {
      socket.destroy();
      child.kill();
      await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * (b) koffi's asynchronous call of a plain C function (memcpy echo). koffi
 * refuses more than a few dozen async calls at once ("Too many asynchronous
 * calls are running"), so calls beyond KOFFI_MAX_ASYNC wait in a JS queue.
 */
const KOFFI_MAX_ASYNC = 32;
function koffiAsync(): Peer {
  const lib = koffi.load(path.join(FIXTURES, 'libherald_plain_echo.so'));
  const echo = lib.func('int herald_plain_echo(const uint8_t *in, int len, _Out_ uint8_t *out)');
  let running = 0;
  const queue: (() => void)[] = [];
  const start = (
    request: Buffer,
    resolve: (b: Buffer) => void,
    reject: (e: unknown) => void,
  ): void => {
    running++;
    const out = Buffer.allocUnsafe(request.length);
    echo.async(request, request.length, out, (error: unknown, length: number) => {
      running--;
      queue.shift()?.();
      if (error) reject(error);
      else resolve(out.subarray(0, length));
    });
  };
  const call: Call = request =>
    new Promise((resolve, reject) => {
      if (running < KOFFI_MAX_ASYNC) start(request, resolve, reject);
      else queue.push(() => start(request, resolve, reject));
    });
  return { name: 'koffi', call, close: () => lib.unload() };
}

/** (c) A worker thread echoing each message back. */
async function worker(): Promise<Peer> {
  const thread = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.on('message', message => parentPort.postMessage(message));`,
    { eval: true },
  );
  await once(thread, 'online');
  const waiting: ((answer: Buffer) => void)[] = [];
  let head = 0;
  thread.on('message', (answer: Uint8Array) => {
    waiting[head++](Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
    if (head > 4096 && head * 2 > waiting.length) {
      waiting.splice(0, head);
      head = 0;
    }
  });
  const call: Call = request =>
    new Promise(resolve => {
      waiting.push(resolve);
      thread.postMessage(request);
    });
  return { name: 'worker', call, close: async () => void (await thread.terminate()) };
}

const fmt = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`;
const us = (n: number): string => `${n.toFixed(1)}`;

async function main(): Promise<void> {
  const peers: Peer[] = [herald(), await uds(), koffiAsync(), await worker()];
  const results = new Map<string, Result>();
  const key = (peer: string, size: number, inFlight: number): string =>
    `${peer}/${size}/${inFlight}`;
  console.log(
    `ffi echo, best of ${ROUNDS} x ${DURATION_MS} ms per cell, ${os.cpus().length} CPUs, ` +
      `node ${process.version}, load average ${os.loadavg()[0].toFixed(1)}`,
  );
  console.log('| size | in flight | peer | calls/s | p50 us | p99 us | herald/peer |');
  console.log('|---|---|---|---|---|---|---|');
  for (const size of SIZES) {
    for (const inFlight of IN_FLIGHT) {
      for (const peer of peers) {
        const result = await measure(peer.call, size, inFlight);
        results.set(key(peer.name, size, inFlight), result);
        const ours = results.get(key('herald', size, inFlight))!;
        const ratio =
          peer.name === 'herald'
            ? ''
            : `${(ours.callsPerSecond / result.callsPerSecond).toFixed(2)}x`;
        console.log(
          `| ${size} B | ${inFlight} | ${peer.name} | ${fmt(result.callsPerSecond)} | ${us(result.p50)} | ${us(result.p99)} | ${ratio} |`,
        );
      }
    }
  }
  for (const peer of peers) await peer.close();
  const ours = results.get(key('herald', 4096, 64))!;
  for (const peer of peers.slice(1).reverse()) {
    const theirs = results.get(key(peer.name, 4096, 64))!;
    console.log(
      `herald/${peer.name} = ${(ours.callsPerSecond / theirs.callsPerSecond).toFixed(1)}x (4 KiB, 64 in flight)`,
    );
  }
}

main().then(
  () => process.exit(0),
  error => {
    console.error(error);
    process.exit(1);
  },
);
