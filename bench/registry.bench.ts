// node --expose-gc --import ./scripts/register-ts.mjs bench/registry.bench.ts
//
// Issue 16's registry bench: 10,000 @OnEvent handlers on 10,000 distinct
// events (1000 providers x 10 methods), nest-herald's EventsModule against
// @nestjs/event-emitter's EventEmitterModule (defaults), each side in a fresh
// process: startup (NestFactory.createApplicationContext, init included),
// app heap after GC, then each of the 10,000 events once (first pass) and
// once more (second pass): postLocal vs emit, post vs emitAsync.
// Goals: postLocal/emit >= 1x on the first pass, post/emitAsync >= 0.5x,
// heap <= 1.5x. Each run starts BENCH_SAMPLES (3) processes per side,
// alternating, and takes the median of each figure. Each pass is measured
// three ways, all printed: process CPU (every thread: V8's background
// compiler and GC too) and wall time, both JUDGED (what a user pays and
// sees: a run meets the goals only when they hold on both), and main-thread
// CPU (the thread that runs the pass, printed for diagnosis: it leaves out
// the compiling V8 does for herald's path on other threads). Wall time of a
// 15 ms pass on a shared machine is noisy: judge quiet runs. Self-contained
// loop (the bench harness times rounds inside one process; here every pass
// must be a process's first).
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventEmitter2,
  EventEmitterModule,
  OnEvent as OnEmitterEvent,
} from '@nestjs/event-emitter';
import { EventPublisher, EventsModule, OnEvent, silentLogger } from '../lib/index.js';
import { cpuMicros, mainThreadCpuMicros } from './harness/harness.cpu.js';
import { handlerProviders } from './harness/registry-app.js';

// BENCH_SMOKE=1: 200 handlers, one run (a check that the bench runs).
const SMOKE = process.env.BENCH_SMOKE === '1';
const PROVIDERS = Number(process.env.BENCH_PROVIDERS ?? (SMOKE ? 20 : 1000));
const METHODS = 10;
const RUNS = Number(process.env.BENCH_RUNS ?? (SMOKE ? 1 : 3));
/** Processes per side and run; the run takes each figure's median. */
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? (SMOKE ? 1 : 3));

interface Figures {
  startupMs: number;
  heapBytes: number;
  localFirstMs: number;
  localSecondMs: number;
  asyncFirstMs: number;
  asyncSecondMs: number;
  /** CPU of the side's main thread in each pass, µs: steadier than wall time under load. */
  localFirstCpu: number;
  localSecondCpu: number;
  asyncFirstCpu: number;
  asyncSecondCpu: number;
  /** CPU of the whole process (background compiler and GC threads too) in each pass, µs. */
  localFirstAll: number;
  localSecondAll: number;
  asyncFirstAll: number;
  asyncSecondAll: number;
}

let handled = 0;

/** 1000 provider classes, each with 10 handler methods, decorated the way the side's users write them. */
function providers(side: 'herald' | 'emitter'): Type[] {
  return handlerProviders(
    PROVIDERS,
    side === 'herald'
      ? (p, m) => OnEvent(`p${p}`, `e${m}`)
      : (p, m) => OnEmitterEvent(`p${p}.e${m}`),
    () => handled++,
  );
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise(resolve => setImmediate(resolve));
}

/** Wall ms, main-thread CPU µs and whole-process CPU µs of one pass. */
async function timed(run: () => Promise<void>): Promise<[number, number, number]> {
  const all = cpuMicros();
  const main = mainThreadCpuMicros();
  const start = performance.now();
  await run();
  const wall = performance.now() - start;
  return [wall, mainThreadCpuMicros() - main, cpuMicros() - all];
}

async function side(which: 'herald' | 'emitter'): Promise<Figures> {
  const classes = providers(which);
  @Module({
    imports: [
      which === 'herald'
        ? EventsModule.forRoot({ logger: silentLogger, maxPending: 20_000 })
        : EventEmitterModule.forRoot(),
    ],
    providers: classes,
  })
  class App {}
  gc();
  const before = process.memoryUsage().heapUsed;
  const startStart = performance.now();
  const app = await NestFactory.createApplicationContext(App, { logger: false });
  const startupMs = performance.now() - startStart;
  gc();
  const heapBytes = process.memoryUsage().heapUsed - before;
  const names: [string, string][] = [];
  for (let p = 0; p < PROVIDERS; p++)
    for (let m = 0; m < METHODS; m++) names.push([`p${p}`, `e${m}`]);
  const total = names.length;
  const figures: Partial<Figures> = { startupMs, heapBytes };
  if (which === 'herald') {
    const events = app.get(EventPublisher);
    await events.waitUntilReady();
    const local = async (): Promise<void> => {
      handled = 0;
      for (const [source, event] of names) events.postLocal(source, event, 1);
      await until(() => handled === total);
    };
    const posted = async (): Promise<void> => {
      handled = 0;
      await Promise.all(names.map(([source, event]) => events.post(source, event, 1)));
      await until(() => handled === total);
    };
    [figures.localFirstMs, figures.localFirstCpu, figures.localFirstAll] = await timed(local);
    [figures.localSecondMs, figures.localSecondCpu, figures.localSecondAll] = await timed(local);
    [figures.asyncFirstMs, figures.asyncFirstCpu, figures.asyncFirstAll] = await timed(posted);
    [figures.asyncSecondMs, figures.asyncSecondCpu, figures.asyncSecondAll] = await timed(posted);
  } else {
    const emitter = app.get(EventEmitter2);
    const dotted = names.map(([source, event]) => `${source}.${event}`);
    const emit = async (): Promise<void> => {
      handled = 0;
      for (const name of dotted) emitter.emit(name, 1);
      await until(() => handled === total);
    };
    const emitAsync = async (): Promise<void> => {
      handled = 0;
      await Promise.all(dotted.map(name => emitter.emitAsync(name, 1)));
      await until(() => handled === total);
    };
    [figures.localFirstMs, figures.localFirstCpu, figures.localFirstAll] = await timed(emit);
    [figures.localSecondMs, figures.localSecondCpu, figures.localSecondAll] = await timed(emit);
    [figures.asyncFirstMs, figures.asyncFirstCpu, figures.asyncFirstAll] = await timed(emitAsync);
    [figures.asyncSecondMs, figures.asyncSecondCpu, figures.asyncSecondAll] =
      await timed(emitAsync);
  }
  await app.close();
  return figures as Figures;
}

function child(which: 'herald' | 'emitter'): Figures {
  const result = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), which],
    { encoding: 'utf8', env: process.env },
  );
  if (result.status !== 0) throw new Error(`${which} run failed:\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Figures;
}

const fmt = (n: number, digits = 1): string => n.toFixed(digits);

/** The per-figure median of several processes of one side. */
function medianOf(samples: Figures[]): Figures {
  const out = {} as Record<keyof Figures, number>;
  for (const key of Object.keys(samples[0]) as (keyof Figures)[]) {
    const sorted = samples.map(s => s[key]).sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    out[key] = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }
  return out;
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (arg === 'herald' || arg === 'emitter') {
    process.stdout.write(`${JSON.stringify(await side(arg))}\n`);
    return;
  }
  console.log(
    `registry bench: ${PROVIDERS * METHODS} handlers on ${PROVIDERS * METHODS} distinct events (${PROVIDERS} providers x ${METHODS} methods), ${RUNS} runs of ${SAMPLES} process(es) per side, load average ${loadAverage()}`,
  );
  console.log(
    "ratios are event-emitter/herald (above 1x: herald faster), each pass on three measures: process CPU (every thread: V8's background compiler and GC too), wall time, and main-thread CPU (/proc/self/task/<pid>/schedstat: the thread that runs the pass). The goals are JUDGED ON PROCESS CPU AND WALL TIME, both (what a user pays and sees; noisy on a loaded machine); main-thread CPU is printed for diagnosis only",
  );
  type Measure = 'main-thread CPU' | 'process CPU' | 'wall';
  const MEASURES: readonly Measure[] = ['main-thread CPU', 'process CPU', 'wall'];
  const metBy: Record<Measure, number> = { 'main-thread CPU': 0, 'process CPU': 0, wall: 0 };
  let judgedMet = 0;
  for (let run = 1; run <= RUNS; run++) {
    const heralds: Figures[] = [];
    const emitters: Figures[] = [];
    for (let sample = 0; sample < SAMPLES; sample++) {
      // Alternate which side goes first, so neither always meets the same machine.
      if (sample % 2 === 0) {
        heralds.push(child('herald'));
        emitters.push(child('emitter'));
      } else {
        emitters.push(child('emitter'));
        heralds.push(child('herald'));
      }
    }
    const herald = medianOf(heralds);
    const emitter = medianOf(emitters);
    type Pass = 'localFirst' | 'localSecond' | 'asyncFirst' | 'asyncSecond';
    /** event-emitter/herald of one pass on one measure. */
    const by = (pass: Pass, measure: Measure): number =>
      measure === 'main-thread CPU'
        ? emitter[`${pass}Cpu`] / herald[`${pass}Cpu`]
        : measure === 'process CPU'
          ? emitter[`${pass}All`] / herald[`${pass}All`]
          : emitter[`${pass}Ms`] / herald[`${pass}Ms`];
    const judged = (goal?: number): string =>
      goal === undefined ? '' : ` [judged, goal >= ${goal}x]`;
    const ratio = (pass: Pass, goal?: number): string =>
      `process CPU ${fmt(by(pass, 'process CPU'), 2)}x (${fmt(herald[`${pass}All`] / 1000)} / ${fmt(emitter[`${pass}All`] / 1000)} ms)${judged(goal)}, ` +
      `wall ${fmt(by(pass, 'wall'), 2)}x (${fmt(herald[`${pass}Ms`])} / ${fmt(emitter[`${pass}Ms`])} ms)${judged(goal)}, ` +
      `main-thread CPU ${fmt(by(pass, 'main-thread CPU'), 2)}x (${fmt(herald[`${pass}Cpu`] / 1000)} / ${fmt(emitter[`${pass}Cpu`] / 1000)} ms)`;
    const heap = herald.heapBytes / emitter.heapBytes;
    const meets = (measure: Measure): boolean =>
      heap <= 1.5 && by('localFirst', measure) >= 1 && by('asyncFirst', measure) >= 0.5;
    for (const measure of MEASURES) if (meets(measure)) metBy[measure]++;
    const met = meets('process CPU') && meets('wall');
    if (met) judgedMet++;
    console.log(
      [
        `run ${run}:`,
        `startup herald ${fmt(herald.startupMs)} ms / event-emitter ${fmt(emitter.startupMs)} ms;`,
        `heap herald ${fmt(herald.heapBytes / 2 ** 20)} MiB / event-emitter ${fmt(emitter.heapBytes / 2 ** 20)} MiB = ${fmt(heap, 2)}x (goal <= 1.5x);`,
        `postLocal vs emit, first pass: ${ratio('localFirst', 1)}; second pass: ${ratio('localSecond')};`,
        `post vs emitAsync, first pass: ${ratio('asyncFirst', 0.5)}; second pass: ${ratio('asyncSecond')};`,
        met ? 'goals met (process CPU and wall)' : 'GOALS NOT MET (process CPU and wall)',
        `[process CPU: ${meets('process CPU') ? 'met' : 'not met'}; wall: ${meets('wall') ? 'met' : 'not met'}; main-thread CPU: ${meets('main-thread CPU') ? 'met' : 'not met'}]`,
      ].join(' '),
    );
  }
  console.log(`load average now ${loadAverage()}`);
  // The goal line stays last, as it was (scripts/bench-smoke.mjs reads it);
  // the line above it says what it judged and how each measure did.
  console.log(
    `goals (heap <= 1.5x, postLocal/emit >= 1x and post/emitAsync >= 0.5x on the first pass) judged on process CPU and wall time together: met in ${judgedMet} of ${RUNS} runs; on process CPU alone: ${metBy['process CPU']} of ${RUNS}; on wall time alone: ${metBy.wall} of ${RUNS}; on main-thread CPU (not judged): ${metBy['main-thread CPU']} of ${RUNS}`,
  );
  console.log(`goals met in ${judgedMet} of ${RUNS} consecutive runs`);
}

function loadAverage(): string {
  return os
    .loadavg()
    .map(n => n.toFixed(2))
    .join(' ');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
