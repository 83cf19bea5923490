// npm run bench:ffi — echo round trips/s and p50/p99 latency of a native
// runtime called through nest-herald/ffi, with 1, 64 and 1024 calls in
// flight at 16 B and 4 KiB, in one run against:
//   (a) uds:    the same echo over a unix domain socket to a separate process,
//               4-byte big-endian length-prefixed frames, many requests in
//               flight on one pipelining connection (the original's comparison)
//   (b) koffi:  koffi's `.async()` call of a plain C echo (libuv thread pool)
//   (c) worker: worker_threads postMessage to an echoing worker
// Every cell (size, in flight, peer) is a variant of the harness (bench/harness):
// BENCH_ROUNDS (default 3) interleaved rounds of BENCH_MS (default 500 ms)
// after a short warm-up; CPU counts this process (all its threads: herald's
// poller, koffi's pool, the worker) and the uds server process, which reports
// its own. Last line: herald/uds at 4 KiB with 64 in flight. BENCH_SMOKE=1.
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
import {
  ANSWER_CPU_JS,
  askCpuMicros,
  rounds,
  runBench,
  runMain,
  setting,
  smokeOr,
  type Comparison,
  type RunResult,
  type Variant,
} from './harness/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'ffi', 'build');
const DURATION_MS = setting('BENCH_MS', 500, 50);
const ROUNDS = rounds(3);
const WARMUP_MS = smokeOr(200, 20);
const SIZES = [16, 4096];
const IN_FLIGHT = [1, 64, 1024];

type Call = (request: Buffer) => Promise<Buffer>;

interface Peer {
  name: string;
  call: Call;
  close(): Promise<void> | void;
  /** CPU µs of the peer's own process so far, when it has one. */
  childCpuMicros?(): Promise<number>;
}

/** Closed loop: `inFlight` callers each issue the next call when the previous answers. */
async function closedLoop(
  call: Call,
  size: number,
  inFlight: number,
  ms: number,
  latencies?: number[],
): Promise<RunResult> {
  const request = Buffer.alloc(size, 0x41);
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
  return { events: calls, seconds: (performance.now() - started) / 1000, latencyMs: latencies };
}

/** One cell of the matrix for one peer; the peers live across the rounds. */
function cell(peer: Peer, size: number, inFlight: number): Variant {
  return {
    name: cellName(peer.name, size, inFlight),
    setup: async () => ({
      warmUp: async () => void (await closedLoop(peer.call, size, inFlight, WARMUP_MS)),
      async run() {
        const childBefore = await peer.childCpuMicros?.();
        const result = await closedLoop(peer.call, size, inFlight, DURATION_MS, []);
        const childAfter = await peer.childCpuMicros?.();
        return { ...result, childCpuMicros: (childAfter ?? 0) - (childBefore ?? 0) };
      },
    }),
  };
}

const cellName = (peer: string, size: number, inFlight: number): string =>
  `${peer} ${size} B x${inFlight}`;

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
${ANSWER_CPU_JS}
process.on('disconnect', () => process.exit(0));
`;

/** (a) A separate process echoing length-prefixed frames; one pipelining connection. */
async function uds(): Promise<Peer & { child: ChildProcess }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-uds-'));
  const socketPath = path.join(dir, 'echo.sock');
  const child = spawn(process.execPath, ['-e', UDS_SERVER, socketPath], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
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
    childCpuMicros: () => askCpuMicros(child),
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

runMain('bench:ffi', async () => {
  const peers: Peer[] = [];
  try {
    peers.push(herald(), await uds(), koffiAsync(), await worker());
  } catch (error) {
    for (const peer of peers) await peer.close();
    throw error;
  }
  const variants = SIZES.flatMap(size =>
    IN_FLIGHT.flatMap(inFlight => peers.map(peer => cell(peer, size, inFlight))),
  );
  const comparisons: Comparison[] = SIZES.flatMap(size =>
    IN_FLIGHT.filter(inFlight => size !== 4096 || inFlight !== 64).map(inFlight => ({
      label: `herald/uds at ${size} B, ${inFlight} in flight`,
      herald: cellName('herald', size, inFlight),
      peer: cellName('uds', size, inFlight),
    })),
  );
  for (const peer of ['worker', 'koffi'])
    comparisons.push({
      label: `herald/${peer} at 4096 B, 64 in flight`,
      herald: cellName('herald', 4096, 64),
      peer: cellName(peer, 4096, 64),
    });
  // The headline last: 4 KiB with 64 in flight against uds.
  comparisons.push({
    label: 'herald/uds',
    herald: cellName('herald', 4096, 64),
    peer: cellName('uds', 4096, 64),
  });
  await runBench({
    title: 'bench:ffi',
    description: `echo round trips, closed loop, ${DURATION_MS} ms per cell and round after ${WARMUP_MS} ms of warm-up; herald poll threads: ${process.env.BENCH_FFI_THREADS ?? 1}`,
    unit: 'calls',
    latencyUnit: 'µs',
    rounds: ROUNDS,
    variants,
    comparisons,
    close: async () => {
      for (const peer of peers) await peer.close();
    },
  });
});
