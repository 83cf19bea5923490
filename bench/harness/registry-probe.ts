// node --expose-gc --import ./scripts/register-ts.mjs bench/harness/registry-probe.ts herald|emitter
//
// One side of bench:registry (registry.bench.ts's app: 1000 providers x 10
// @OnEvent methods on 10,000 distinct events), started, then its first
// postLocal (herald) or emit (event-emitter) pass alone, with what that
// pass did that does not depend on the machine's load: the collections V8
// ran in it (PerformanceObserver 'gc': kind and duration) and the bytes
// each heap space grew by. Run with a young generation large enough that no
// scavenge lands in the pass (`--max-semi-space-size=64`), the growth of
// new space is what the pass allocated. With PROBE_MARKERS=1 it writes
// `ready` before the pass and `done` after it and each time waits for a
// line on stdin: a driver switches callgrind's instrumentation on and off
// there (`callgrind_control -i on|off`), so the count covers the pass only.
// Prints one JSON line.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventEmitter2,
  EventEmitterModule,
  OnEvent as OnEmitterEvent,
} from '@nestjs/event-emitter';
import { createInterface } from 'node:readline';
import { PerformanceObserver, constants as perf } from 'node:perf_hooks';
import v8 from 'node:v8';
import { Session } from 'node:inspector/promises';
import { EventPublisher, EventsModule, OnEvent, silentLogger } from '../../lib/index.js';
import { cpuMicros, mainThreadCpuMicros } from './harness.cpu.js';
import { handlerProviders } from './registry-app.js';

const PROVIDERS = Number(process.env.BENCH_PROVIDERS ?? 1000);
const METHODS = 10;
const MARKERS = process.env.PROBE_MARKERS === '1';
/**
 * PROBE_PASS=post: the first post (herald) or emitAsync (event-emitter) pass
 * instead. PROBE_PASS=bench-post: that pass where bench:registry measures it,
 * after two unmeasured postLocal (emit) passes in the same process (code the
 * two paths share is then already optimized on postLocal's feedback alone).
 * PROBE_PASS=bench-post2: bench:registry's second post (emitAsync) pass,
 * after those two and one unmeasured post (emitAsync) pass.
 */
const PASS = process.env.PROBE_PASS ?? 'local';
const POST = PASS === 'post' || PASS === 'bench-post' || PASS === 'bench-post2';
const LOCAL_FIRST = PASS === 'bench-post' || PASS === 'bench-post2';

const lines = MARKERS
  ? createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  : undefined;

async function marker(name: string): Promise<void> {
  if (!lines) return;
  process.stdout.write(`${name}\n`);
  await lines.next();
}

function spaces(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const space of v8.getHeapSpaceStatistics()) out[space.space_name] = space.space_used_size;
  return out;
}

const GC_KINDS: Record<number, string> = {
  [perf.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [perf.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise(resolve => setImmediate(resolve));
}

async function main(): Promise<void> {
  const side = process.argv[2];
  if (side !== 'herald' && side !== 'emitter') throw new Error('registry-probe: herald|emitter');
  let handled = 0;
  const classes = handlerProviders(
    PROVIDERS,
    side === 'herald'
      ? (p, m) => OnEvent(`p${p}`, `e${m}`)
      : (p, m) => OnEmitterEvent(`p${p}.e${m}`),
    () => handled++,
  );
  @Module({
    imports: [
      side === 'herald'
        ? EventsModule.forRoot({ logger: silentLogger, maxPending: 20_000 })
        : EventEmitterModule.forRoot(),
    ],
    providers: classes,
  })
  class App {}
  const app = await NestFactory.createApplicationContext(App, { logger: false });
  const names: [string, string][] = [];
  for (let p = 0; p < PROVIDERS; p++)
    for (let m = 0; m < METHODS; m++) names.push([`p${p}`, `e${m}`]);
  const total = names.length;
  let pass: () => Promise<void>;
  let local: () => Promise<void>;
  if (side === 'herald') {
    const events = app.get(EventPublisher);
    await events.waitUntilReady();
    local = async () => {
      handled = 0;
      for (const [source, event] of names) events.postLocal(source, event, 1);
      await until(() => handled === total);
    };
    pass = POST
      ? async () => {
          await Promise.all(names.map(([source, event]) => events.post(source, event, 1)));
          await until(() => handled === total);
        }
      : async () => {
          for (const [source, event] of names) events.postLocal(source, event, 1);
          await until(() => handled === total);
        };
  } else {
    const emitter = app.get(EventEmitter2);
    const dotted = names.map(([source, event]) => `${source}.${event}`);
    local = async () => {
      handled = 0;
      for (const name of dotted) emitter.emit(name, 1);
      await until(() => handled === total);
    };
    pass = POST
      ? async () => {
          await Promise.all(dotted.map(name => emitter.emitAsync(name, 1)));
          await until(() => handled === total);
        }
      : async () => {
          for (const name of dotted) emitter.emit(name, 1);
          await until(() => handled === total);
        };
  }
  if (LOCAL_FIRST) {
    await local();
    await local();
  }
  if (PASS === 'bench-post2') {
    handled = 0;
    await pass();
  }
  handled = 0;
  (globalThis as { gc?: () => void }).gc?.();
  const collections: { kind: string; ms: number }[] = [];
  let measuring = false;
  const observer = new PerformanceObserver(list => {
    for (const entry of list.getEntries()) {
      if (!measuring) continue;
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind ?? -1;
      collections.push({ kind: GC_KINDS[kind] ?? String(kind), ms: +entry.duration.toFixed(2) });
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  await marker('ready');
  // PROBE_HEAP=1: V8's sampling heap profiler over the pass, at a fine
  // interval: where the pass's allocations come from (prints the top sites).
  const session = process.env.PROBE_HEAP === '1' ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 64,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  measuring = true;
  const before = spaces();
  const cpu = cpuMicros();
  const main = mainThreadCpuMicros();
  const start = performance.now();
  await pass();
  const wallMs = performance.now() - start;
  const cpuMs = (cpuMicros() - cpu) / 1000;
  const mainMs = (mainThreadCpuMicros() - main) / 1000;
  const after = spaces();
  await marker('done');
  if (session) {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as {
      profile: { head: SamplingNode };
    };
    const sites = new Map<string, number>();
    const walk = (node: SamplingNode, stack: string): void => {
      const frame = node.callFrame;
      const here = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
      if (node.selfSize > 0)
        sites.set(here + ' <- ' + stack, (sites.get(here + ' <- ' + stack) ?? 0) + node.selfSize);
      for (const child of node.children) walk(child, here.split(' ')[0]);
    };
    walk(profile.head, '');
    const top = [...sites].sort((a, b) => b[1] - a[1]).slice(0, 25);
    for (const [site, bytes] of top)
      console.error(`${(bytes / total).toFixed(1).padStart(7)} B/event  ${site}`);
    session.disconnect();
  }
  // The observer's callback runs after the pass's turn: let it.
  await new Promise(resolve => setTimeout(resolve, 20));
  measuring = false;
  observer.disconnect();
  const grown: Record<string, number> = {};
  for (const name of Object.keys(after)) {
    const delta = after[name] - (before[name] ?? 0);
    if (delta !== 0) grown[name] = delta;
  }
  await app.close();
  process.stdout.write(
    `${JSON.stringify({ side, events: total, wallMs: +wallMs.toFixed(2), cpuMs: +cpuMs.toFixed(2), mainMs: +mainMs.toFixed(2), collections, grown, newSpacePerEvent: +((grown.new_space ?? 0) / total).toFixed(1) })}\n`,
  );
  lines?.return?.();
  process.stdin.destroy();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
