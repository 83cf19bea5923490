// Load-independent figures of one pg variant at a time, per delivered event:
// what the Node process does (instructions under callgrind, bytes allocated,
// young-generation collections) and what goes to and from PostgreSQL
// (statements, bytes written and read on every connection of the process).
// bench:pg's workload: 100 B of data (PROBE_SIZE), 4000 sends in flight (at
// most 4 MiB of data: 1024 at 4 KB, as bench:pg; PROBE_WINDOW sets it), a
// counting handler, sender and receiver in this process.
//
//   PROBE_VARIANT=herald|hub   EventsModule post -> @OnEvent, or PgHub notify -> consumer
//   PROBE_EVENTS (10000)       events measured, after PROBE_WARM_UP (30000); BENCH_SMOKE=1: 500 after 1000
//   PROBE_CALLGRIND=1          runs the probe again under `valgrind --tool=callgrind
//                              --instr-atstart=no`, `node --single-threaded` (the
//                              collector's work on this thread, counted), and switches
//                              counting on (callgrind_control) for the measured events
//                              only: instructions per event, and by part (compiled
//                              JavaScript, collector, compilers, the rest of V8 and
//                              Node), from callgrind_annotate; PROBE_KEEP=1 keeps the
//                              output file and node's --perf-basic-prof map
//   PROBE_SITES=<file>         writes a sampling heap profile of the measured events
//                              (every sample kept, collected or not) to <file>
//   BENCH_BASE=<dir>           the lib of another checkout (as bench:pg-before-after)
//
// Run with a young generation that holds the measured events' garbage
// (`--min-semi-space-size=256 --max-semi-space-size=256`) for exact bytes
// allocated: the heap's growth with no collection in between.
import 'reflect-metadata';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import * as thisLib from '../lib/index.js';
import * as thisPg from '../lib/pg/index.js';
import {
  HitCounter,
  pgBenchData,
  windowed,
  withHeraldPg,
  withPgHub,
  type Lib,
  type PgLib,
} from './harness/pg-variants.js';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const VARIANT = process.env.PROBE_VARIANT ?? 'herald';
/** BENCH_SMOKE=1 (CI's bench:smoke): a few events through the same path, so the probe cannot rot. */
const SMOKE = process.env.BENCH_SMOKE === '1';
const EVENTS = Number(process.env.PROBE_EVENTS ?? (SMOKE ? 500 : 10_000));
const WARM_UP = Number(process.env.PROBE_WARM_UP ?? (SMOKE ? 1000 : 30_000));
const SIZE = Number(process.env.PROBE_SIZE ?? 100);
/** Under callgrind, driven by the parent (`child`), or the parent that runs it (`1`). */
const CALLGRIND = process.env.PROBE_CALLGRIND === 'child';
const SITES = process.env.PROBE_SITES;
/** bench:pg's window: 4000 in flight, at most 4 MiB of data. */
const WINDOW = Number(
  process.env.PROBE_WINDOW ?? Math.min(4000, Math.floor((4 * 1024 * 1024) / SIZE)),
);
/** PROBE_BATCH: the hub's batchSize (notifies per statement), else its default. */
const BATCH = process.env.PROBE_BATCH ? { batchSize: Number(process.env.PROBE_BATCH) } : {};
/**
 * Under callgrind everything runs some 50x slower: a heartbeat that times
 * out there drops the LISTEN connection, loses what was sent meanwhile and
 * the probe waits for ever. One a minute, with a minute to answer.
 */
const HEARTBEAT = CALLGRIND ? { heartbeatMs: 60_000, heartbeatTimeoutMs: 60_000 } : {};

const data = pgBenchData(SIZE);
const counter = new HitCounter();
const hit = counter.hit;
const until = (events: number): Promise<void> => counter.until(events);

/** Every pg client of the process (the pool's and the LISTEN connection), for its statements and bytes. */
const clients = new Set<pg.Client>();
let statements = 0;
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  clients.add(this);
  statements++;
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;
const wire = (): { written: number; read: number } => {
  let written = 0;
  let read = 0;
  for (const client of clients) {
    const stream = (client as unknown as { connection: { stream: import('node:net').Socket } })
      .connection.stream;
    written += stream.bytesWritten;
    read += stream.bytesRead;
  }
  return { written, read };
};

/**
 * Nanoseconds on a CPU of a thread or process (/proc/<id>/schedstat's first
 * field, Linux): the main thread of this process, and the PostgreSQL backends
 * serving this probe's connections (found by their application_name).
 */
function onCpuNs(path: string): number {
  try {
    return Number(readFileSync(path, 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}
async function backends(): Promise<number[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      // The LISTEN connection's name ends in /listen: it sorts after the sender's.
      'SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1 ORDER BY application_name',
      [`${VARIANT}-probe-${process.pid}%`],
    );
    return rows.map(row => row.pid);
  } finally {
    await client.end();
  }
}
/**
 * What a backend moved through system calls (/proc/<pid>/io: bytes read and
 * written, calls made), load-independent: its socket, and the files it
 * writes and reads back (the notify queue's pages, a statement's temporary
 * files).
 */
interface ServerIo {
  rchar: number;
  wchar: number;
  syscr: number;
  syscw: number;
}
function serverIo(pid: number): ServerIo {
  const io: ServerIo = { rchar: 0, wchar: 0, syscr: 0, syscw: 0 };
  try {
    for (const line of readFileSync(`/proc/${pid}/io`, 'utf8').split('\n')) {
      const [name, value] = line.split(': ');
      if (name in io) io[name as keyof ServerIo] = Number(value);
    }
  } catch {
    // Not readable (another user's server): zeros.
  }
  return io;
}
/** Minor page faults of a process (/proc/<pid>/stat's 10th field): fresh memory mapped in. */
function minorFaults(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[7]);
  } catch {
    return 0;
  }
}
const serverNs = (pids: readonly number[]): number =>
  pids.reduce((sum, pid) => sum + onCpuNs(`/proc/${pid}/schedstat`), 0);
const mainThreadNs = (): number => onCpuNs(`/proc/self/task/${process.pid}/schedstat`);

let scavenges = 0;
let fullGcs = 0;
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) {
    const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
    else fullGcs++;
  }
}).observe({ entryTypes: ['gc'] });

const stdin = CALLGRIND ? createInterface({ input: process.stdin })[Symbol.asyncIterator]() : null;
async function signal(line: string): Promise<void> {
  // PROBE_MARK=1: the two lines alone, to find the measured part in a --trace-opt log.
  if (process.env.PROBE_MARK === '1') console.log(line);
  if (!stdin) return;
  console.log(line);
  // Callgrind takes a command only while the program runs: keep it running
  // until the parent answers (an idle wait on stdin never got the command).
  const ticking = setInterval(() => undefined, 5);
  await stdin.next();
  clearInterval(ticking);
}

async function measure(send: () => Promise<unknown>): Promise<void> {
  let handled = until(WARM_UP);
  await windowed(WARM_UP, WINDOW, send);
  await handled;
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise(resolve => setImmediate(resolve));
  const session = SITES ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  const pids = await backends();
  await signal('ready');
  handled = until(EVENTS);
  const [server0, main0] = [serverNs(pids), mainThreadNs()];
  const server0ByPid = pids.map(pid => serverNs([pid]));
  const io0 = pids.map(serverIo);
  const faults0 = pids.map(minorFaults);
  const heap = getHeapStatistics().used_heap_size;
  const [gc0, full0, statements0, wire0] = [scavenges, fullGcs, statements, wire()];
  const cpu = process.cpuUsage();
  const started = performance.now();
  await windowed(EVENTS, WINDOW, send);
  await handled;
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - started;
  const [server1, main1] = [serverNs(pids), mainThreadNs()];
  const server1ByPid = pids.map(pid => serverNs([pid]));
  const io1 = pids.map(serverIo);
  const faults1 = pids.map(minorFaults);
  const allocated = getHeapStatistics().used_heap_size - heap;
  const wire1 = wire();
  const statementsRun = statements - statements0;
  await signal('done');
  if (session) {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    writeFileSync(SITES!, JSON.stringify(profile));
    session.disconnect();
  }
  await new Promise(resolve => setImmediate(resolve));
  const per = (value: number): string => (value / EVENTS).toFixed(2);
  console.log(
    JSON.stringify({
      variant: VARIANT,
      size: SIZE,
      events: EVENTS,
      window: WINDOW,
      // Wall time: a figure of the machine's load as much as of the code.
      eventsPerSecond: Math.round((EVENTS * 1000) / wallMs),
      cpuUsPerEvent: per(used.user + used.system),
      mainThreadUsPerEvent: per((main1 - main0) / 1000),
      serverUsPerEvent: per((server1 - server0) / 1000),
      serverUsPerEventByBackend: pids.map((pid, i) =>
        per((server1ByPid[i] - server0ByPid[i]) / 1000),
      ),
      backends: pids.length,
      // Per backend (sender, then the LISTEN connection's): bytes read and
      // written by system calls, and the calls, per event.
      serverIoPerEvent: pids.map((_, i) => ({
        rchar: per(io1[i].rchar - io0[i].rchar),
        wchar: per(io1[i].wchar - io0[i].wchar),
        syscalls: per(io1[i].syscr - io0[i].syscr + io1[i].syscw - io0[i].syscw),
      })),
      // Per backend: minor page faults per 1000 events (a statement that
      // outgrows glibc's mmap threshold faults its memory in afresh).
      serverFaultsPer1000: pids.map((_, i) =>
        (((faults1[i] - faults0[i]) * 1000) / EVENTS).toFixed(1),
      ),
      heapBytesPerEvent: per(allocated),
      scavengesPer10k: (((scavenges - gc0) * 10_000) / EVENTS).toFixed(2),
      fullGcs: fullGcs - full0,
      statementsPer1000: ((statementsRun * 1000) / EVENTS).toFixed(2),
      bytesWrittenPerEvent: per(wire1.written - wire0.written),
      bytesReadPerEvent: per(wire1.read - wire0.read),
    }),
  );
}

async function herald(lib: Lib): Promise<void> {
  const options = {
    connectionString: PG_URL,
    channel: `probe_${process.pid}_herald`,
    applicationName: `herald-probe-${process.pid}`,
    ...BATCH,
    ...HEARTBEAT,
  };
  await withHeraldPg(lib, options, hit, post => measure(() => post(data())));
}

async function hub(pgLib: PgLib): Promise<void> {
  const options = {
    connectionString: PG_URL,
    applicationName: `hub-probe-${process.pid}`,
    ...BATCH,
    ...HEARTBEAT,
  };
  await withPgHub(pgLib, options, `probe_${process.pid}_hub`, hit, notify =>
    measure(() => notify(data())),
  );
}

/** C++ symbols of the collector and of the compilers (the rest of V8 and Node is "runtime"). */
const GC =
  /(Heap|Scaveng|MarkCompact|Sweep|Evacuat|Marking|GCTracer|MinorMC|ConcurrentMark|RememberedSet|SlotSet|Worklist|MemoryAllocator|PagedSpace|NewSpace|SemiSpace|ObjectVisitor|BodyDescriptor|IterateAndScavenge)/;
const COMPILER =
  /(compiler::|Compiler|Maglev|Turbofan|interpreter::|Bytecode|Parser|Scanner|Ast|Preparse|Zone)/;

/** The parent: the probe under callgrind, counting on for the measured events only. */
async function underCallgrind(): Promise<void> {
  const out = join(tmpdir(), `pg-probe-${process.pid}.cg`);
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--single-threaded',
      '--perf-basic-prof',
      ...process.execArgv,
      process.argv[1],
    ],
    { env: { ...process.env, PROBE_CALLGRIND: 'child' }, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<number | null>(resolve => child.on('exit', resolve));
  const control = (what: string): void => {
    const result = spawnSync('callgrind_control', [what, String(child.pid)], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`callgrind_control ${what}: ${result.stderr}`);
  };
  let summary = '';
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line === 'ready') {
      control('--instr=on');
      child.stdin!.write('go\n');
    } else if (line === 'done') {
      control('--instr=off');
      child.stdin!.write('go\n');
    } else if (line.startsWith('{')) summary = line;
    else console.log(line);
  }
  const code = await exited;
  if (code !== 0) throw new Error(`the probe under callgrind exited with ${code}`);
  const total = Number(/^totals:\s+(\d+)/m.exec(readFileSync(out, 'utf8'))?.[1]);
  const annotated = spawnSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', out], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  }).stdout;
  const parts = { jit: 0, gc: 0, compiler: 0, runtime: 0 };
  for (const line of annotated.split('\n')) {
    const match = /^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (!match || match[2].includes('PROGRAM TOTALS')) continue;
    const instructions = Number(match[1].replaceAll(',', ''));
    if (/^\?\?\?:0x[0-9a-f]+/.test(match[2])) parts.jit += instructions;
    else if (GC.test(match[2])) parts.gc += instructions;
    else if (COMPILER.test(match[2])) parts.compiler += instructions;
    else parts.runtime += instructions;
  }
  const per = (value: number): number => Math.round(value / EVENTS);
  console.log(
    JSON.stringify({
      ...(JSON.parse(summary || '{}') as object),
      instructionsPerEvent: per(total),
      jit: per(parts.jit),
      gc: per(parts.gc),
      compiler: per(parts.compiler),
      runtime: per(parts.runtime),
    }),
  );
  if (process.env.PROBE_KEEP === '1') console.log(`kept ${out} and /tmp/perf-${child.pid}.map`);
  else rmSync(out, { force: true });
}

async function main(): Promise<void> {
  if (process.env.PROBE_CALLGRIND === '1') return underCallgrind();
  const base = process.env.BENCH_BASE;
  const load = <T>(file: string, mine: T): Promise<T> =>
    base ? (import(pathToFileURL(join(base, file)).href) as Promise<T>) : Promise.resolve(mine);
  if (VARIANT === 'herald') await herald(await load('lib/index.js', thisLib));
  else if (VARIANT === 'hub') await hub(await load('lib/pg/index.js', thisPg));
  else throw new Error(`PROBE_VARIANT must be herald or hub, got ${VARIANT}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
