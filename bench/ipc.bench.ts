// npm run bench:ipc — events among 4 worker processes of one host:
//   herald   nest-herald ipc transport (broker in the node:cluster primary, acks,
//            queues, unique and back-pressure all on), EventBus post -> handler
//   cluster  node:cluster process.send, relayed by the primary to every worker
//   redis    Redis pub/sub through ioredis (one publisher + one subscriber per worker)
//   pm2      herald with 4 independent processes (no primary, as under pm2): the
//            broker is elected among them and hosted by one of the workers
// Then failover: 4 independent processes posting; the broker's process is
// SIGKILLed and the time to the first event delivered by the new broker is
// taken, 10 times (BENCH_FAILOVERS), median printed.
// Every worker posts ~100-byte events, keeping 256 of its own in flight (sent
// and not yet delivered back to itself), for BENCH_SECONDS; delivered events/s
// are counted at the receivers, latency (post -> handler) as p50/p99.
import { fork, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EventBus, silentLogger } from '../lib/index.js';
import { forkWorkers, startBroker } from '../lib/transports/ipc/ipc.cluster.js';
import { IpcTransport } from '../lib/transports/ipc/ipc.transport.js';

const WORKERS = 4;
const IN_FLIGHT = 256;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const WARMUP_MS = 500;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MODES = (process.env.BENCH_MODES ?? 'cluster,redis,herald,pm2').split(',') as Mode[];
const FAILOVERS = Number(process.env.BENCH_FAILOVERS ?? 10);
/** Rounds of every mode, interleaved; each mode's best round is kept (the machine is shared and noisy). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
type Mode = 'herald' | 'cluster' | 'redis' | 'pm2' | 'failover';
interface Result {
  rate: number;
  p50: number;
  p99: number;
  /** Delivered events per CPU-second of all processes (primary + workers): less sensitive to a busy machine. */
  perCpuSecond: number;
}

interface Report {
  type: 'report';
  received: number;
  latencies: number[];
  /** CPU time (user + system, µs) the worker used while measuring. */
  cpuMicros: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const PAD = 'x'.repeat(48);

if (cluster.isPrimary && !process.env.BENCH_CHILD) {
  await primary();
} else if (process.env.BENCH_MODE === 'failover') {
  await failoverChild();
} else {
  await worker(process.env.BENCH_MODE as Mode);
}

/** Independent processes (child_process.fork, not node:cluster), as pm2 would start them. */
const socketDirs: string[] = [];
process.once('exit', () => {
  for (const dir of socketDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh 0700 directory for one run's socket, removed when this process exits. */
function socketDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  socketDirs.push(dir);
  return dir;
}

function forkIndependent(mode: Mode, socketPath: string, id: number): ChildProcess {
  return fork(process.argv[1], [], {
    env: {
      ...process.env,
      BENCH_CHILD: '1',
      BENCH_MODE: mode,
      HERALD_WORKER_ID: String(id),
      HERALD_WORKER_COUNT: String(WORKERS),
      HERALD_IPC_SOCKET: socketPath,
    },
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise(resolve => child.once('exit', () => resolve()));
}

function message<T extends { type: string }>(child: ChildProcess, type: string): Promise<T> {
  return new Promise(resolve => {
    const listener = (m: T): void => {
      if (m.type !== type) return;
      child.off('message', listener);
      resolve(m);
    };
    child.on('message', listener);
  });
}

/** SIGKILL the broker's process; ms until the first event delivered by the new broker. */
async function failovers(): Promise<number[]> {
  const socketPath = path.join(socketDir('herald-failover-'), 'f.sock');
  const live = new Map<number, ChildProcess>();
  let brokerId = -1;
  const start = async (id: number): Promise<void> => {
    const child = forkIndependent('failover', socketPath, id);
    live.set(id, child);
    child.on('message', (m: { type: string }) => {
      if (m.type === 'broker') brokerId = id;
    });
    const ready = await message<{ type: string; broker: boolean }>(child, 'ready');
    if (ready.broker) brokerId = id;
  };
  for (let id = 0; id < WORKERS; id++) await start(id);
  for (const child of live.values()) child.send({ type: 'go' });
  const times: number[] = [];
  for (let i = 0; i < FAILOVERS; i++) {
    const victim = brokerId;
    const survivors = [...live].filter(([id]) => id !== victim).map(([, child]) => child);
    for (const child of survivors) child.send({ type: 'arm' });
    await Promise.all(survivors.map(child => message(child, 'armed')));
    const firsts = survivors.map(child => message<{ type: string; t: number }>(child, 'first'));
    const killedAt = now();
    live.get(victim)!.kill('SIGKILL');
    const first = await Promise.race(firsts);
    times.push(first.t - killedAt);
    // Every survivor back on the new broker, and the killed process restarted (it joins as a worker).
    await Promise.all(firsts);
    await exited(live.get(victim)!);
    await start(victim);
    live.get(victim)!.send({ type: 'go' });
  }
  for (const child of live.values()) child.kill('SIGKILL');
  await Promise.all([...live.values()].map(exited));
  return times;
}

async function failoverChild(): Promise<void> {
  const transport = new IpcTransport({ failover: true });
  const bus = new EventBus({ logger: silentLogger, transport });
  let armed = false;
  let sawReconnect = false;
  let wasBroker = false;
  transport.status$.subscribe(status => {
    if (status.state === 'reconnecting') sawReconnect = true;
    if (status.role === 'broker' && !wasBroker) {
      wasBroker = true;
      process.send!({ type: 'broker' });
    }
  });
  bus.register(() => {
    if (armed && sawReconnect) {
      armed = false;
      process.send!({ type: 'first', t: now() });
    }
  }, 'ping');
  await bus.connect();
  bus.start();
  let n = 0;
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'go') {
      setInterval(() => void bus.post('ping', 'p', n++).catch(() => undefined), 1).unref();
    } else if (m.type === 'arm') {
      armed = true;
      sawReconnect = false;
      process.send!({ type: 'armed' });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready', broker: transport.isBroker });
  wasBroker = transport.isBroker;
}

async function primary(): Promise<void> {
  const results: ({ mode: Mode } & Result)[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      const result = await runMode(mode);
      console.log(
        `round ${round} ${mode.padEnd(8)} ${Math.round(result.rate).toLocaleString('en-US').padStart(10)} delivered events/s   p50 ${result.p50.toFixed(2)} ms   p99 ${result.p99.toFixed(2)} ms   ${Math.round(result.perCpuSecond).toLocaleString('en-US')} per CPU-s`,
      );
      const best = results.find(r => r.mode === mode);
      if (!best) results.push({ mode, ...result });
      else if (result.rate > best.rate) Object.assign(best, result);
    }
  }
  const times = FAILOVERS > 0 ? await failovers() : [];
  console.log(
    `best of ${ROUNDS} round(s), ${WORKERS} workers, ${IN_FLIGHT} in flight each, ${SECONDS} s:`,
  );
  for (const r of results) {
    console.log(
      `${r.mode.padEnd(8)} ${Math.round(r.rate).toLocaleString('en-US').padStart(10)} delivered events/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   ${Math.round(r.perCpuSecond).toLocaleString('en-US')} per CPU-s`,
    );
  }
  if (times.length > 0) {
    const sorted = [...times].sort((a, b) => a - b);
    const median = (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
    console.log(
      `failover: broker SIGKILL -> first event delivered by the new broker: median ${median.toFixed(1)} ms of ${sorted.length} (min ${sorted[0].toFixed(1)}, max ${sorted[sorted.length - 1].toFixed(1)})`,
    );
  }
  const base = results.find(r => r.mode === 'cluster');
  if (base) {
    const redis = results.find(r => r.mode === 'redis');
    if (redis) console.log(`redis/cluster = ${(redis.rate / base.rate).toFixed(1)}x`);
    const pm2 = results.find(r => r.mode === 'pm2');
    if (pm2) console.log(`herald-pm2/cluster = ${(pm2.rate / base.rate).toFixed(1)}x`);
    // Last line: the ratio against (a), the process.send relay.
    const herald = results.find(r => r.mode === 'herald');
    if (herald) console.log(`herald/cluster = ${(herald.rate / base.rate).toFixed(1)}x`);
  }
  process.exit(0);
}

async function runMode(mode: Mode): Promise<Result> {
  const env = { BENCH_MODE: mode };
  let stopBroker: (() => Promise<void>) | undefined;
  let group: {
    workers: Map<number, import('node:cluster').Worker | ChildProcess>;
    stop(): Promise<void>;
  };
  if (mode === 'pm2') {
    const socketPath = path.join(socketDir('herald-bench-'), 'p.sock');
    const children = new Map<number, ChildProcess>();
    for (let id = 0; id < WORKERS; id++) children.set(id, forkIndependent(mode, socketPath, id));
    group = {
      workers: children,
      stop: () => Promise.all([...children.values()].map(exited)).then(() => undefined),
    };
  } else if (mode === 'herald') {
    const socketPath = path.join(socketDir('herald-bench-'), 'b.sock');
    const broker = await startBroker(
      { socketPath, workerCount: WORKERS },
      { logger: silentLogger },
    );
    stopBroker = () => broker.close();
    group = forkWorkers(WORKERS, { broker, env, respawn: false });
  } else {
    group = forkWorkers(WORKERS, { env, respawn: false });
  }
  const workers = [...group.workers.values()];
  if (mode === 'cluster') {
    // The relay: every event a worker sends goes to every worker.
    for (const w of workers) {
      w.on('message', (message: { type?: string }) => {
        if (message.type === 'event') for (const other of workers) other.send(message);
      });
    }
  }
  await Promise.all(
    workers.map(
      w =>
        new Promise<void>(resolve =>
          w.on('message', (m: { type?: string }) => m.type === 'ready' && resolve()),
        ),
    ),
  );
  const reports = workers.map(
    w =>
      new Promise<Report>(resolve =>
        w.on('message', (m: Report) => m.type === 'report' && resolve(m)),
      ),
  );
  for (const w of workers) w.send({ type: 'go' });
  await new Promise(resolve => setTimeout(resolve, WARMUP_MS));
  for (const w of workers) w.send({ type: 'measure' });
  const started = now();
  const primaryCpu = process.cpuUsage();
  await new Promise(resolve => setTimeout(resolve, SECONDS * 1000));
  for (const w of workers) w.send({ type: 'stop' });
  const elapsed = (now() - started) / 1000;
  const primaryUsed = process.cpuUsage(primaryCpu);
  const all = await Promise.all(reports);
  for (const w of workers) w.send({ type: 'exit' });
  await group.stop();
  await stopBroker?.();
  const received = all.reduce((sum, r) => sum + r.received, 0);
  const latencies = all.flatMap(r => r.latencies).sort((a, b) => a - b);
  const pick = (q: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const cpuSeconds =
    (all.reduce((sum, r) => sum + r.cpuMicros, 0) + primaryUsed.user + primaryUsed.system) / 1e6;
  return {
    rate: received / elapsed,
    p50: pick(0.5),
    p99: pick(0.99),
    perCpuSecond: received / cpuSeconds,
  };
}

async function worker(mode: Mode): Promise<void> {
  const id = Number(process.env.HERALD_WORKER_ID);
  let running = false;
  let measuring = false;
  let cpuAtStart = process.cpuUsage();
  let received = 0;
  let sent = 0;
  let ownBack = 0;
  const latencies: number[] = [];
  const onEvent = (data: { t: number; w: number }): void => {
    if (measuring) {
      received++;
      if ((received & 7) === 0) latencies.push(now() - data.t);
    }
    if (data.w === id) {
      ownBack++;
      pump();
    }
  };
  let send: (data: { t: number; w: number; i: number; pad: string }) => void;
  let close: () => Promise<void> = async () => undefined;

  if (mode === 'herald' || mode === 'pm2') {
    // pm2: independent processes, the broker elected among them (failover is the default there).
    const transport = new IpcTransport(mode === 'pm2' ? { failover: true } : {});
    const bus = new EventBus({ logger: silentLogger, transport });
    bus.register(data => onEvent(data as { t: number; w: number }), 'bench', 'e');
    await bus.connect();
    bus.start();
    send = data => void bus.post('bench', 'e', data).catch(() => undefined);
    close = () => bus.close({ timeoutMs: 1000 });
  } else if (mode === 'cluster') {
    process.on('message', (m: { type?: string; data?: { t: number; w: number } }) => {
      if (m.type === 'event') onEvent(m.data!);
    });
    send = data => void process.send!({ type: 'event', data });
  } else {
    const { Redis } = await import('ioredis');
    const channel = `herald-bench-${process.ppid}`;
    const pub = new Redis(REDIS_URL);
    const sub = new Redis(REDIS_URL);
    await sub.subscribe(channel);
    sub.on('message', (_c: string, text: string) => onEvent(JSON.parse(text)));
    send = data => void pub.publish(channel, JSON.stringify(data));
    close = async () => {
      pub.disconnect();
      sub.disconnect();
    };
  }

  function pump(): void {
    while (running && sent - ownBack < IN_FLIGHT) {
      send({ t: now(), w: id, i: sent++, pad: PAD });
    }
  }

  process.on('message', (m: { type?: string }) => {
    if (m.type === 'go') {
      running = true;
      pump();
    } else if (m.type === 'measure') {
      measuring = true;
      cpuAtStart = process.cpuUsage();
    } else if (m.type === 'stop') {
      running = false;
      measuring = false;
      const cpu = process.cpuUsage(cpuAtStart);
      process.send!({
        type: 'report',
        received,
        latencies,
        cpuMicros: cpu.user + cpu.system,
      } satisfies Report);
    } else if (m.type === 'exit') {
      void close().then(() => process.exit(0));
    }
  });
  process.send!({ type: 'ready' });
}
