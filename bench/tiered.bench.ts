// npm run bench:tiered — broadcast across 2 "hosts" of 4 worker processes each:
//   tiered  nest-herald's tiered fan-out: ipc inside each host (an elected
//           broker per host), one redis uplink per host in its broker (host
//           posts relayed once, the stream read once per host)
//   redis   8 direct redis subscribers: the redis transport in every process
//           (broadcast mode, one consumer group per process)
// Every worker posts ~100-byte events, keeping 64 of its own in flight (posted
// and not yet delivered back to itself), for BENCH_SECONDS after a warm-up;
// every event reaches all 8 workers. Figures: delivered events/s (all workers),
// CPU per delivered event (every Node process: user + sys, each reports its
// own), and network reads per event: the entries the stream's consumer groups
// read (XINFO GROUPS entries-read, summed) per entry written, and the
// redis-server's CPU per delivered event (INFO CPU), since the point of the
// tier is to take reads off the server: the bench starts a private
// redis-server (no persistence, a free port; BENCH_REDIS_URL uses another).
// Interleaved rounds (bench/harness); BENCH_SMOKE=1: 2 hosts x 2 workers, a
// fraction of a second.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { EventBus } from '../lib/bus/event-bus.js';
import { silentLogger } from '../lib/common/logger.js';
import type { Transport } from '../lib/interfaces/transport.interface.js';
import { createTieredTransport } from '../lib/transports/create-tiered.js';
import { RedisTransport } from '../lib/transports/redis/redis.transport.js';
import { PrivateRedis } from '../test/helpers/private-redis.js';
import {
  cpuMicros,
  median,
  rounds,
  runBench,
  runMain,
  setting,
  smokeOr,
  type Session,
  type Variant,
} from './harness/index.js';

const HOSTS = 2;
const PER_HOST = smokeOr(4, 2);
const IN_FLIGHT = 64;
const SECONDS = setting('BENCH_SECONDS', 4, 0.3);
const WARMUP_MS = smokeOr(1000, 200);
const ROUNDS = rounds(3);
/** The Redis of the run: the parent's private server, handed to the workers. */
let redisUrl = process.env.BENCH_REDIS_URL ?? '';
const PAD = 'x'.repeat(64);
type Mode = 'tiered' | 'redis';

interface Report {
  type: 'report';
  received: number;
  seconds: number;
  cpuMicros: number;
}

/** Per mode, one per round: network reads per event, redis-server µs CPU per delivered event, Node µs CPU per delivered event. */
const readsPerEvent = new Map<Mode, number[]>([
  ['tiered', []],
  ['redis', []],
]);
const serverCpu = new Map<Mode, number[]>([
  ['tiered', []],
  ['redis', []],
]);
const nodeCpu = new Map<Mode, number[]>([
  ['tiered', []],
  ['redis', []],
]);

/** The redis-server's user + sys CPU so far, µs (INFO CPU). */
async function serverCpuMicros(): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    const info = await redis.info('cpu');
    const field = (name: string): number =>
      Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
    return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
  } finally {
    redis.disconnect();
  }
}

const socketDirs: string[] = [];
process.once('exit', () => {
  for (const dir of socketDirs) rmSync(dir, { recursive: true, force: true });
});

function message<T extends { type: string }>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const listener = (m: T): void => {
      if (m?.type !== type) return;
      child.off('message', listener);
      child.off('exit', died);
      resolve(m);
    };
    const died = (code: number | null): void =>
      reject(new Error(`a bench worker exited (code ${code}) before sending ${type}`));
    child.on('message', listener);
    child.once('exit', died);
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise(resolve => child.once('exit', () => resolve()));
}

/** The entries the stream's groups read, summed, per entry in the stream. */
async function networkReads(stream: string): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const length = await redis.xlen(stream);
      const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
      let read = 0;
      let lag = 0;
      for (const fields of groups)
        for (let i = 0; i < fields.length; i += 2) {
          if (fields[i] === 'entries-read') read += Number(fields[i + 1] ?? 0);
          if (fields[i] === 'lag') lag += Number(fields[i + 1] ?? 0);
        }
      if (lag === 0 || Date.now() > deadline) return read / length;
      await new Promise(resolve => setTimeout(resolve, 50));
    }
  } finally {
    redis.disconnect();
  }
}

async function dropStream(stream: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    await redis.del(stream, `${stream}:dead`);
  } finally {
    redis.disconnect();
  }
}

/** One round of a mode: 2 hosts x PER_HOST workers, or as many direct subscribers. */
function variant(mode: Mode): Variant {
  return {
    name: mode,
    async setup(): Promise<Session> {
      const stream = `herald:bench:tiered:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
      const workers: ChildProcess[] = [];
      for (let h = 0; h < HOSTS; h++) {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-tier-bench-'));
        socketDirs.push(dir);
        for (let id = 0; id < PER_HOST; id++) {
          const child = fork(process.argv[1], [], {
            env: {
              ...process.env,
              BENCH_CHILD: '1',
              BENCH_MODE: mode,
              BENCH_STREAM: stream,
              BENCH_REDIS_URL: redisUrl,
              BENCH_HOST: `bench-h${h}`,
              BENCH_SOCKET: path.join(dir, 'h.sock'),
              BENCH_WORKER: String(id),
            },
          });
          workers.push(child);
          // One at a time: the first of a host is elected its broker and connects the uplink.
          await message(child, 'ready');
        }
      }
      const teardown = async (): Promise<void> => {
        for (const child of workers) child.send({ type: 'exit' });
        await Promise.race([
          Promise.all(workers.map(exited)),
          new Promise(resolve => setTimeout(resolve, 10_000)),
        ]);
        for (const child of workers) if (child.exitCode === null) child.kill('SIGKILL');
        await dropStream(stream);
      };
      return {
        async warmUp() {
          for (const child of workers) child.send({ type: 'go' });
          await new Promise(resolve => setTimeout(resolve, WARMUP_MS));
        },
        async run() {
          const serverBefore = await serverCpuMicros();
          for (const child of workers) child.send({ type: 'measure' });
          await new Promise(resolve => setTimeout(resolve, SECONDS * 1000));
          const reports = workers.map(child => message<Report>(child, 'report'));
          for (const child of workers) child.send({ type: 'report' });
          const all = await Promise.all(reports);
          const server = (await serverCpuMicros()) - serverBefore;
          const events = all.reduce((n, r) => n + r.received, 0);
          const childCpu = all.reduce((n, r) => n + r.cpuMicros, 0);
          serverCpu.get(mode)!.push(server / events);
          nodeCpu.get(mode)!.push(childCpu / events);
          // Every worker stopped posting: counted once every group has read everything (lag 0).
          readsPerEvent.get(mode)!.push(await networkReads(stream));
          return {
            events,
            seconds: median(all.map(r => r.seconds)),
            childCpuMicros: childCpu,
          };
        },
        teardown,
      };
    },
  };
}

/** A worker process: posts with IN_FLIGHT of its own outstanding, counts what it receives. */
async function child(): Promise<void> {
  const mode = process.env.BENCH_MODE as Mode;
  const stream = process.env.BENCH_STREAM!;
  const host = process.env.BENCH_HOST!;
  const id = Number(process.env.BENCH_WORKER);
  const redis = { url: redisUrl, stream, readCount: 500, maxLen: 0 };
  const transport: Transport =
    mode === 'tiered'
      ? await createTieredTransport(
          {
            socketPath: process.env.BENCH_SOCKET!,
            workerId: id,
            workerCount: PER_HOST,
            failover: true,
          },
          { transport: 'redis', host, redis },
        )
      : new RedisTransport(redis);
  const bus = new EventBus({ transport, logger: silentLogger, concurrency: 64 });
  const me = `${host}/${id}`;
  let received = 0;
  let outstanding = 0;
  let posting = false;
  let wake: (() => void) | undefined;
  bus.register(data => {
    received++;
    if ((data as { from: string }).from === me) {
      outstanding--;
      wake?.();
    }
  }, 'bench');
  await bus.connect();
  bus.start();
  const loop = async (): Promise<void> => {
    let n = 0;
    while (posting) {
      if (outstanding >= IN_FLIGHT) {
        await new Promise<void>(resolve => (wake = resolve));
        wake = undefined;
        continue;
      }
      outstanding++;
      bus.post('bench', 'tick', { from: me, n: n++, pad: PAD }).catch(() => outstanding--);
      if (n % 16 === 0) await new Promise(resolve => setImmediate(resolve));
    }
  };
  let mark = { received: 0, cpu: 0, at: 0 };
  process.on('message', (m: { type: string }) => {
    if (m.type === 'go') {
      posting = true;
      void loop();
    } else if (m.type === 'measure') {
      mark = { received, cpu: cpuMicros(), at: performance.now() };
    } else if (m.type === 'report') {
      posting = false;
      wake?.();
      process.send!({
        type: 'report',
        received: received - mark.received,
        seconds: (performance.now() - mark.at) / 1000,
        cpuMicros: cpuMicros() - mark.cpu,
      } satisfies Report);
    } else if (m.type === 'exit') {
      void bus.close({ timeoutMs: 5000 }).finally(() => process.exit(0));
    }
  });
  process.send!({ type: 'ready' });
}

if (process.env.BENCH_CHILD) {
  void child();
} else {
  runMain('bench:tiered', async () => {
    const own = redisUrl ? undefined : await new PrivateRedis([], { persistence: false }).start();
    if (own) redisUrl = own.url;
    await runBench({
      title: 'bench:tiered',
      description:
        `${HOSTS} hosts x ${PER_HOST} worker processes, every event to all ${HOSTS * PER_HOST}; ` +
        `~100-byte events, ${IN_FLIGHT} of each worker's own in flight, ${SECONDS} s per round after ${WARMUP_MS} ms warm-up`,
      rounds: ROUNDS,
      variants: [variant('redis'), variant('tiered')],
      comparisons: [{ label: 'herald/redis', herald: 'tiered', peer: 'redis' }],
      close: async () => {
        await own?.stop();
      },
      async extra() {
        const list = (values: number[]): string => values.map(v => v.toFixed(2)).join(' ');
        return [
          ...[...readsPerEvent].map(
            ([mode, values]) =>
              `network reads per event, ${mode}: ${list(values)} (median ${median(values).toFixed(2)}; ${mode === 'tiered' ? `one per host: ${HOSTS}` : `one per process: ${HOSTS * PER_HOST}`})`,
          ),
          ...[...serverCpu].map(([mode, values]) => {
            const total = values.map((v, i) => v + nodeCpu.get(mode)![i]);
            return `redis-server µs CPU per delivered event, ${mode}: ${list(values)} (median ${median(values).toFixed(2)}); Node + redis-server: median ${median(total).toFixed(2)}`;
          }),
        ];
      },
    });
  });
}
