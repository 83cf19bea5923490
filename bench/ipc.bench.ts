// npm run bench:ipc — events among 4 worker processes of one host:
//   herald   nest-herald ipc transport (broker in the node:cluster primary, acks,
//            queues, unique and back-pressure all on), EventBus post -> handler
//   cluster  node:cluster process.send, relayed by the primary to every worker
//   redis    Redis pub/sub through ioredis (one publisher + one subscriber per worker)
//   pm2      herald with 4 independent processes (no primary, as under pm2): the
//            broker is elected among them and hosted by one of the workers
//   nest     EventsModule.forRoot({ transport: 'ipc' }): EventPublisher.post -> @OnEvent
//   wire     the transport's parts alone: IpcClient -> broker -> IpcClient, no bus
//            (envelopes built by hand with the bus's field sizes, JSON payloads,
//            one publish per microtask as the bus batches, each delivery acked:
//            bench/ipc.wire-poster.ts)
// The CPU per delivered event of nest and wire is printed side by side.
// Then failover: 4 independent processes posting; the broker's process is
// SIGKILLed and the time to the first event delivered by the new broker is
// taken, BENCH_FAILOVERS times (default 10), median printed.
// Every worker posts ~100-byte events, keeping 256 of its own in flight (sent
// and not yet delivered back to itself); delivered events/s are counted at
// the receivers while all post, latency (post -> handler) as p50/p99. CPU:
// the primary's and every worker's (each reports its own
// process.resourceUsage()), all of it per event received, ramp-up and drain
// included. Each round starts every mode's processes, warms each up once,
// then runs BENCH_SLICES (default 8) slices of BENCH_SECONDS / BENCH_SLICES
// per mode, one mode at a time, their order reversed every slice: a mode's
// figures are the sum of its slices (measureRound). BENCH_ROUNDS rounds
// (bench/harness); BENCH_MODES=herald,... runs some, BENCH_SMOKE=1.
import { fork, type ChildProcess } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
// The bus and the transport by their modules, not the package root: every
// worker process compiles what it imports, and the root pulls in all of Nest.
import { EventBus } from '../lib/bus/event-bus.js';
import { silentLogger } from '../lib/common/logger.js';
import { IpcClient } from '../lib/transports/ipc/ipc.client.js';
import { forkWorkers, startBroker } from '../lib/transports/ipc/ipc.cluster.js';
import { resolveIpcTransportOptions } from '../lib/transports/ipc/ipc.options.js';
import { IpcTransport } from '../lib/transports/ipc/ipc.transport.js';
import { WirePoster } from './ipc.wire-poster.js';
import {
  cpuMicros,
  median,
  rounds,
  runBench,
  runMain,
  selectVariants,
  setting,
  SMOKE,
  smokeOr,
  type Comparison,
  type RunResult,
  type Session,
  type Variant,
} from './harness/index.js';

/** 4 workers; 2 in smoke mode (every process start compiles the TypeScript sources). */
const WORKERS = smokeOr(4, 2);
const IN_FLIGHT = 256;
const SECONDS = setting('BENCH_SECONDS', 4, 0.3);
const WARMUP_MS = smokeOr(500, 100);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const FAILOVERS = setting('BENCH_FAILOVERS', 10, 1);
const ROUNDS = rounds(3);
/** Slices per round and mode (see measureRound). */
const SLICES = Math.max(1, Math.round(setting('BENCH_SLICES', 8, 2)));
/** How long a slice's events may take to reach every worker after it stopped posting. */
const DRAIN_MS = 30_000;
type Mode = 'herald' | 'cluster' | 'redis' | 'pm2' | 'nest' | 'wire' | 'failover';
const MODES = (process.env.BENCH_MODES ?? 'cluster,redis,herald,pm2,nest,wire').split(
  ',',
) as Mode[];
/** CPU µs per delivered event of every process of a round, by mode (nest and wire side by side). */
const cpuPerEvent = new Map<Mode, number[]>();
/** Delivered events/s of each round, by mode (herald against the wire's ceiling). */
const ratePerRound = new Map<Mode, number[]>();

/** What a worker used from the end of its previous slice to the end of this one (ramp, window, tail, idle). */
interface Drained {
  type: 'drained';
  cpuMicros: number;
  events: number;
}

interface Report {
  type: 'report';
  received: number;
  /** How long the worker counted. */
  seconds: number;
  latencies: number[];
}

const ACK = Object.freeze({ outcome: 'ack' as const });
const now = (): number => performance.timeOrigin + performance.now();
const PAD = 'x'.repeat(48);

/** Socket directories of this process, removed when it exits. */
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

/** Independent processes (child_process.fork, not node:cluster), as pm2 would start them. */
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

function message<T extends { type: string }>(
  child: ChildProcess | Worker,
  type: string,
): Promise<T> {
  return new Promise(resolve => {
    const listener = (m: T): void => {
      if (m?.type !== type) return;
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
  process.on('message', (m: { type?: string; seconds?: number }) => {
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

/** What one slice of one mode measured. */
interface SliceFigures {
  events: number;
  /** Seconds the events were counted over (events / the sum of the workers' rates). */
  seconds: number;
  /** CPU µs per event received, every process, all of the slice (see Group.slice). */
  cpuPerEvent: number;
  latencies: number[];
}

/** One mode's processes for one round: started once, then measured in slices. */
class Group {
  private stopping = false;
  /** Rejects when a worker dies before the round ends: the bench fails instead of hanging. */
  readonly died: Promise<never>;

  private constructor(
    readonly mode: Mode,
    private readonly workers: (Worker | ChildProcess)[],
    private readonly stopWorkers: () => Promise<void>,
    private readonly stopBroker: (() => Promise<void>) | undefined,
  ) {
    this.died = new Promise<never>((_, reject) => {
      for (const w of workers) {
        w.once('exit', (code: number | null, signal: string | null) => {
          if (!this.stopping)
            reject(new Error(`${mode} worker exited early (code ${code}, ${signal})`));
        });
        // A send racing a worker's exit at teardown (EPIPE) is no failure; before it, it is one.
        w.on('error', (error: Error) => {
          if (!this.stopping) reject(error);
        });
      }
    });
    this.died.catch(() => undefined);
  }

  static async start(mode: Mode): Promise<Group> {
    let stopBroker: (() => Promise<void>) | undefined;
    let group: { workers: Map<number, Worker | ChildProcess>; stop(): Promise<void> };
    if (mode === 'pm2') {
      const socketPath = path.join(socketDir('herald-bench-'), 'p.sock');
      const children = new Map<number, ChildProcess>();
      for (let id = 0; id < WORKERS; id++) children.set(id, forkIndependent(mode, socketPath, id));
      group = {
        workers: children,
        stop: () => Promise.all([...children.values()].map(exited)).then(() => undefined),
      };
    } else if (mode === 'herald' || mode === 'nest' || mode === 'wire') {
      const socketPath = path.join(socketDir('herald-bench-'), 'b.sock');
      const broker = await startBroker(
        { socketPath, workerCount: WORKERS },
        { logger: silentLogger },
      );
      stopBroker = () => broker.close();
      group = forkWorkers(WORKERS, { broker, env: { BENCH_MODE: mode }, respawn: false });
    } else {
      group = forkWorkers(WORKERS, { env: { BENCH_MODE: mode }, respawn: false });
    }
    const workers = [...group.workers.values()];
    const self = new Group(mode, workers, () => group.stop(), stopBroker);
    if (mode === 'cluster') {
      // The relay: every event a worker sends goes to every worker.
      const clusterWorkers = workers as Worker[];
      for (const w of clusterWorkers) {
        w.on('message', (m: { type?: string }) => {
          if (m.type !== 'event' || self.stopping) return;
          for (const other of clusterWorkers) if (other.isConnected()) other.send(m);
        });
      }
    }
    try {
      await Promise.race([Promise.all(workers.map(w => message(w, 'ready'))), self.died]);
    } catch (error) {
      await self.stop();
      throw error;
    }
    return self;
  }

  /**
   * One slice, as a whole round was before: every worker posts (256 of its
   * own in flight); once all do, each counts what it receives over `seconds`
   * (events/s and latency: the steady state); then all stop posting, and the
   * slice ends once every worker received every event posted (each goes to
   * every worker), so nothing of it runs in the next one's. CPU per event is
   * of all of it: each worker's CPU and events from the end of its previous
   * slice to the end of this one (ramp-up, window, tail, and whatever it did
   * while idle, e.g. a collection deferred past its window), the primary's
   * (the broker, the relay) from the start of the slice to its end.
   */
  async slice(seconds: number): Promise<SliceFigures> {
    const workers = this.workers;
    const cpuAtStart = cpuMicros();
    const race = <T>(all: Promise<T>[]): Promise<T[]> =>
      Promise.race([Promise.all(all), this.died]);
    const posting = workers.map(w => message(w, 'posting'));
    for (const w of workers) w.send({ type: 'slice' });
    await race(posting);
    const reports = workers.map(w => message<Report>(w, 'report'));
    for (const w of workers) w.send({ type: 'measure', seconds });
    const all = await race(reports);
    const stopped = workers.map(w => message<{ type: string; sent: number }>(w, 'stopped'));
    for (const w of workers) w.send({ type: 'stop' });
    const total = (await race(stopped)).reduce((sum, r) => sum + r.sent, 0);
    const drained = workers.map(w => message<Drained>(w, 'drained'));
    for (const w of workers) w.send({ type: 'drain', total });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new Error(
            `${this.mode}: not every worker received the ${total} events posted within ${DRAIN_MS} ms`,
          ),
        );
      }, DRAIN_MS);
    });
    const ends = await Promise.race([race(drained), late]).finally(() => clearTimeout(timer));
    const cpu = cpuMicros() - cpuAtStart + ends.reduce((sum, r) => sum + r.cpuMicros, 0);
    const events = all.reduce((sum, r) => sum + r.received, 0);
    // Each worker counted over its own window; the slice's rate is the sum of theirs.
    const rate = all.reduce((sum, r) => sum + r.received / r.seconds, 0);
    return {
      events,
      seconds: events / rate,
      cpuPerEvent: cpu / ends.reduce((sum, r) => sum + r.events, 0),
      latencies: all.flatMap(r => r.latencies),
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of this.workers) {
      if ('isConnected' in w ? w.isConnected() : w.connected) w.send({ type: 'exit' });
    }
    await this.stopWorkers();
    await this.stopBroker?.();
  }
}

/** Rounds started so far (the slices' order alternates with them). */
let roundsStarted = 0;
/** The figures of the round being reported, by mode, until the harness asks for them. */
const pending = new Map<Mode, RunResult>();

/**
 * One round of every mode, measured together: every mode's processes
 * started, each warmed up once, then SLICES slices of SECONDS / SLICES per
 * mode, the modes' order reversed every slice (ABBA), one mode posting at a
 * time while the others' processes idle. Rounds of a few seconds per mode,
 * one after another, fell on the 2 cores' slow and fast spells unevenly:
 * with one 2 s window per mode and round (BENCH_MODES=herald,wire
 * BENCH_ROUNDS=4 BENCH_SECONDS=2, load 6-10, 2026-12-05) wire/herald per
 * round was 1.30 / 1.98 / 4.31 / 4.19x in one run and 1.75 / 0.67 / 0.24 /
 * 1.61x in the next, each variant's rate moving 3-7x between rounds; in 8
 * slices of 0.25 s, 1.08 / 1.00 / 1.07 / 1.07x. In slices each mode gets
 * its share of every spell.
 */
async function measureRound(modes: Mode[]): Promise<void> {
  const round = roundsStarted++;
  const groups: Group[] = [];
  try {
    for (const mode of modes) groups.push(await Group.start(mode));
    for (const group of groups) await group.slice(WARMUP_MS / 1000);
    const totals = groups.map(() => ({ events: 0, seconds: 0, cpu: 0, latencies: [] as number[] }));
    for (let s = 0; s < SLICES; s++) {
      const order = groups.map((_, i) => i);
      if ((s + round) % 2 === 1) order.reverse();
      for (const i of order) {
        const figures = await groups[i].slice(SECONDS / SLICES);
        totals[i].events += figures.events;
        totals[i].seconds += figures.seconds;
        totals[i].cpu += figures.cpuPerEvent * figures.events;
        totals[i].latencies.push(...figures.latencies);
      }
    }
    modes.forEach((mode, i) => {
      const { events, seconds, cpu, latencies } = totals[i];
      cpuPerEvent.set(mode, [...(cpuPerEvent.get(mode) ?? []), cpu / events]);
      ratePerRound.set(mode, [...(ratePerRound.get(mode) ?? []), events / seconds]);
      pending.set(mode, { events, seconds, childCpuMicros: cpu, latencyMs: latencies });
    });
  } finally {
    await Promise.all(groups.map(group => group.stop()));
  }
}

/**
 * A mode's round for the harness: the first mode asked in a round measures
 * every mode's (measureRound); each then reports its own figures. The
 * harness adds the primary's CPU over run() to childCpuMicros; the primary's
 * share of each slice is in the figures already, so run() subtracts its own.
 */
function session(mode: Mode, modes: Mode[]): Promise<Session> {
  return Promise.resolve({
    async run() {
      const cpuAtStart = cpuMicros();
      // BENCH_SMOKE (CI, a loaded machine): each mode alone, so that every
      // mode's start-up (processes compiling the sources) has the harness's
      // time limit of a variant's round to itself, as before the slices.
      if (!pending.has(mode)) await measureRound(SMOKE ? [mode] : modes);
      const result = pending.get(mode)!;
      pending.delete(mode);
      return { ...result, childCpuMicros: result.childCpuMicros! - (cpuMicros() - cpuAtStart) };
    },
  });
}

async function worker(mode: Mode): Promise<void> {
  const id = Number(process.env.HERALD_WORKER_ID);
  let running = false;
  let measuring = false;
  /** Events received in the current window. */
  let received = 0;
  let latencies: number[] = [];
  /** Every event received, and every one posted, since the start. */
  let receivedAll = 0;
  let sent = 0;
  let ownBack = 0;
  /** 'drain': 'drained' is answered once receivedAll reaches it. */
  let drainTo = Infinity;
  /** CPU µs and events received at the last 'drained'. */
  let atDrained = { cpu: cpuMicros(), receivedAll: 0 };
  const onEvent = (data: { t: number; w: number }): void => {
    receivedAll++;
    if (measuring) {
      received++;
      if ((received & 7) === 0) latencies.push(now() - data.t);
    }
    if (data.w === id) {
      ownBack++;
      pump();
    }
    if (receivedAll >= drainTo) drained();
  };
  /** Every event of the slice arrived: the CPU and events since the last slice's end, all of it. */
  const drained = (): void => {
    drainTo = Infinity;
    const cpu = cpuMicros();
    process.send!({
      type: 'drained',
      cpuMicros: cpu - atDrained.cpu,
      events: receivedAll - atDrained.receivedAll,
    } satisfies Drained);
    atDrained = { cpu, receivedAll };
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
  } else if (mode === 'nest') {
    const { startNestApp } = await import('./ipc.nest-app.js');
    const app = await startNestApp(data => onEvent(data));
    send = data => app.post(data);
    close = () => app.close();
  } else if (mode === 'wire') {
    // The transport's parts without the bus: what a post costs on the wire alone.
    const options = resolveIpcTransportOptions({});
    const client = new IpcClient({
      socketPath: options.socketPath,
      workerId: options.workerId,
      window: options.maxQueueLength,
      postTimeoutMs: options.postTimeoutMs,
      maxFrameBytes: options.maxPayloadBytes + 65_536,
      maxQueueLength: options.maxQueueLength,
      logger: silentLogger,
      deliver: delivery => {
        onEvent(JSON.parse(delivery.envelope.payload) as { t: number; w: number });
        delivery.settle(ACK);
      },
    });
    await client.connect();
    // The bus's envelope fields (and sizes) and batches: herald's frames on the wire.
    const poster = new WirePoster(batch => client.publish(batch), 'bench', 'e');
    send = data => poster.post(JSON.stringify(data));
    close = () => client.close(1000);
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

  process.on('message', (m: { type?: string; seconds?: number; total?: number }) => {
    if (m.type === 'slice') {
      running = true;
      pump();
      process.send!({ type: 'posting' });
    } else if (m.type === 'measure') {
      // The window is timed here, not by the primary's messages: on a loaded
      // machine a busy worker may read 'measure' and a 'stop' in one go and
      // count nothing in between. It lasts `seconds` from when this worker
      // starts counting (every worker posts by then), and says how long it
      // really was.
      received = 0;
      latencies = [];
      measuring = true;
      const startedAt = now();
      setTimeout(
        () => {
          measuring = false;
          process.send!({
            type: 'report',
            received,
            seconds: (now() - startedAt) / 1000,
            latencies,
          } satisfies Report);
        },
        (m.seconds ?? 1) * 1000,
      );
    } else if (m.type === 'stop') {
      running = false;
      process.send!({ type: 'stopped', sent });
    } else if (m.type === 'drain') {
      // Every worker receives every event: the slice is over here once this one has all posted.
      drainTo = m.total!;
      if (receivedAll >= drainTo) drained();
    } else if (m.type === 'exit') {
      void close().then(() => process.exit(0));
    }
  });
  // Never outlive the bench (its primary failed or was killed).
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready' });
}

async function primary(): Promise<void> {
  const names: Record<Exclude<Mode, 'failover'>, string> = {
    cluster: 'cluster (process.send relay)',
    redis: 'redis pub/sub (ioredis)',
    herald: 'herald (broker in primary)',
    pm2: 'herald pm2 (elected broker)',
    nest: 'herald EventsModule (post -> @OnEvent)',
    wire: 'herald wire (IpcClient/broker alone)',
  };
  const modes = MODES.filter((m): m is Exclude<Mode, 'failover'> => m in names);
  // BENCH_VARIANTS (harness.env.ts) as the harness applies it: the modes measured together.
  const chosen = selectVariants(modes.map(mode => ({ mode, name: names[mode] }))).map(v => v.mode);
  const variants: Variant[] = chosen.map(mode => ({
    name: names[mode],
    setup: () => session(mode, chosen),
  }));
  const comparisons: Comparison[] = [
    { label: 'herald/redis', herald: names.herald, peer: names.redis },
    { label: 'herald-pm2/cluster', herald: names.pm2, peer: names.cluster },
    { label: 'herald-nest/cluster', herald: names.nest, peer: names.cluster },
    { label: 'herald-nest/wire', herald: names.nest, peer: names.wire },
    { label: 'herald/wire (ceiling)', herald: names.herald, peer: names.wire },
    { label: 'herald/cluster', herald: names.herald, peer: names.cluster },
  ].filter(c => variants.some(v => v.name === c.herald) && variants.some(v => v.name === c.peer));
  await runBench({
    title: 'bench:ipc',
    description: `${WORKERS} workers, ~100 B events, ${IN_FLIGHT} in flight each, ${SECONDS} s per variant and round, delivered events counted at the receivers`,
    rounds: ROUNDS,
    variants,
    comparisons,
    async extra() {
      const lines: string[] = [];
      const nest = cpuPerEvent.get('nest');
      const wire = cpuPerEvent.get('wire');
      if (nest && wire) {
        const ratios = nest.map((n, i) => n / wire[i]);
        lines.push(
          `CPU per delivered event, every Node process: EventsModule post -> @OnEvent ${nest.map(n => n.toFixed(2)).join(' / ')} µs vs IpcClient/broker alone ${wire.map(n => n.toFixed(2)).join(' / ')} µs per round: nest/wire median ${median(ratios).toFixed(2)}x (range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}x; goal <= 1.5x)`,
        );
      }
      const herald = ratePerRound.get('herald');
      const wireRate = ratePerRound.get('wire');
      const heraldCpu = cpuPerEvent.get('herald');
      if (herald && wireRate && heraldCpu && wire) {
        // The ceiling: the transport's parts alone, same run. The fallback goal
        // where 5x the relay is out of reach: herald within 1.25x of it.
        const ratios = herald.map((h, i) => wireRate[i] / h);
        const cpu = heraldCpu.map((h, i) => h / wire[i]);
        lines.push(
          `herald vs the wire ceiling (IpcClient/broker alone, same run): wire/herald events/s per round ${ratios.map(r => r.toFixed(2)).join(' / ')}: median ${median(ratios).toFixed(2)}x (range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}x; goal <= 1.25x); CPU per event herald/wire median ${median(cpu).toFixed(2)}x`,
        );
      }
      if (FAILOVERS === 0) return lines;
      const times = await failovers();
      const sorted = [...times].sort((a, b) => a - b);
      return [
        ...lines,
        `failover: broker SIGKILL -> first event delivered by the new broker: median ${median(times).toFixed(1)} ms of ${sorted.length} (min ${sorted[0].toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)})`,
      ];
    },
  });
}

if (cluster.isPrimary && !process.env.BENCH_CHILD) {
  runMain('bench:ipc', primary);
} else if (process.env.BENCH_MODE === 'failover') {
  await failoverChild();
} else {
  await worker(process.env.BENCH_MODE as Mode);
}
