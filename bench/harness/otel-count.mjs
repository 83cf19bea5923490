#!/usr/bin/env node
// The load-independent half of issue 26's overhead check: instructions per
// event of the bus's `post` and `postLocal` path (where every per-event hook
// sits: post, delivered, the dispatcher's check, handle), counted by
// valgrind's callgrind, with the API absent against the same checkout with
// the telemetry compiled out (bench/harness/otel-strip.mjs). CPU time on a
// shared machine moves 10-20% between runs of the same code; an instruction
// count moves well under 1%, so it decides a 5% budget.
//
//   node bench/harness/otel-count.mjs [--workload bus|registry] [--events N] [--runs 3]
//
// --workload bus (the default): a bus on the local transport with one
// handler, N posts and N postLocal calls (N = 20,000). --workload registry:
// bench:registry's herald app, N handlers on N distinct events in
// EventsModule (N = 10,000), one postLocal pass and one post pass over them
// after two of each (its second and later passes, registry-passes.ts's
// figure); --only post or --only postLocal counts that pass alone.
//
// Each run starts bench/harness/otel-count.driver.ts under callgrind with
// the instrumentation off (node --single-threaded: the compiler and the GC
// work on the main thread, at the same points every time), lets it warm up,
// turns the instrumentation on (callgrind_control) for exactly `events` posts
// and postLocal calls, off again, and reads the count. The two sides run
// alternately. Needs valgrind; says so and exits 0 without it.
// BENCH_SMOKE=1: 1 run of 500 events.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { buildStrippedTree } from './otel-strip.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const SMOKE = process.env.BENCH_SMOKE === '1';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}
const workload = option('workload', 'bus');
/** registry: count only the postLocal or only the post passes. */
const only = option('only', '');
if (only && (workload !== 'registry' || !['post', 'postLocal'].includes(only)))
  throw new Error('--only post|postLocal goes with --workload registry');
if (workload !== 'bus' && workload !== 'registry')
  throw new Error(`--workload must be bus or registry, got ${workload}`);
const events = Number(
  option('events', workload === 'bus' ? (SMOKE ? '500' : '20000') : SMOKE ? '200' : '10000'),
);
const runs = Number(option('runs', SMOKE ? '1' : '3'));

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.log('otel-count: valgrind is not installed; no instruction count');
  process.exit(0);
}

/** Instructions of `events` posts and postLocal calls in `dir`'s checkout, under callgrind. */
async function count(dir) {
  const out = path.join(os.tmpdir(), `otel-count-${process.pid}-${Date.now()}.cg`);
  const env = {
    ...process.env,
    COUNT_WORKLOAD: workload,
    COUNT_ONLY: only,
    COUNT_EVENTS: String(events),
    COUNT_WARMUP: String(Math.max(events, 5000)),
    // Both sides without the API, as in an app that does not install it.
    NODE_OPTIONS:
      `${process.env.NODE_OPTIONS ?? ''} --import ${path.join(here, 'otel-absent.mjs')}`.trim(),
  };
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--single-threaded',
      '--expose-gc',
      '--import',
      path.join(dir, 'scripts', 'register-ts.mjs'),
      path.join(dir, 'bench', 'harness', 'otel-count.driver.ts'),
    ],
    { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', chunk => (stderr += chunk));
  const exited = new Promise(resolve => child.on('exit', code => resolve(code)));
  const control = what => {
    const result = spawnSync('callgrind_control', [what, String(child.pid)], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`callgrind_control ${what}: ${result.stderr}`);
  };
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'ready') {
      control('--instr=on');
      child.stdin.write('go\n');
    } else if (line === 'done') {
      control('--instr=off');
      child.stdin.write('exit\n');
    }
  }
  const code = await exited;
  if (code !== 0) throw new Error(`otel-count driver in ${dir} exited with ${code}:\n${stderr}`);
  const summary = /^totals:\s+(\d+)/m.exec(readFileSync(out, 'utf8'));
  if (!summary) throw new Error(`no callgrind summary for ${dir}`);
  // The collector's and the compilers' share (by C++ function name): they
  // run when allocation and call counts cross thresholds, so one window can
  // hold a pass more than its twin. And the JIT-compiled JavaScript's own
  // share (no symbol: `0x...`), where the hooks' checks are.
  const annotated = spawnSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', out], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  }).stdout;
  let runtime = 0;
  let jit = 0;
  for (const line of annotated.split('\n')) {
    const match = /^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (!match || match[2].includes('PROGRAM TOTALS')) continue;
    const instructions = Number(match[1].replaceAll(',', ''));
    if (RUNTIME.test(match[2])) runtime += instructions;
    else if (/^\?\?\?:0x[0-9a-f]+/.test(match[2])) jit += instructions;
  }
  if (process.env.OTEL_COUNT_KEEP) console.log(`kept ${out}`);
  else rmSync(out, { force: true });
  return { total: Number(summary[1]), runtime, jit };
}

/** Garbage collection and compilation, by C++ function name. */
const RUNTIME = new RegExp(
  [
    'Scaveng',
    'Evacuat',
    'Sweep',
    'Marking',
    'MarkCompact',
    'v8::internal::Heap',
    'HeapObject::SizeFromMap',
    'Pretenuring',
    'NewSpace',
    'PagedSpace',
    'LargeObjectSpace',
    'FreeList',
    'MemoryChunk',
    'MemoryAllocator',
    'IterateObjectCache',
    'BodyDescriptor',
    'RootVisitor',
    'ObjectVisitor',
    'GlobalHandles',
    'heap::base::',
    'cppgc::',
    'compiler::',
    'maglev::',
    'baseline::',
    'Compiler',
    'Parser',
    'Scanner',
    'Zone',
  ].join('|'),
);

const { dir: stripped, changed } = buildStrippedTree(root);
console.log(
  `otel-count: instructions (callgrind) per event of ${only ? `${events} ${only} calls` : `${events} posts + ${events} postLocal calls`} ` +
    (workload === 'bus'
      ? 'on the local transport, '
      : `over ${events} handlers on as many events (bench:registry's app, passes after its 2nd), `) +
    `absent (this checkout, the API not importable) vs stripped (${changed.reduce((n, c) => n + c.sites.length, 0)} hook sites compiled out); ` +
    `${runs} run(s), load average ${os
      .loadavg()
      .map(n => n.toFixed(2))
      .join(' ')} (does not matter to a count)`,
);
const ratios = [];
try {
  for (let run = 1; run <= runs; run++) {
    const order = run % 2 === 1 ? ['absent', 'stripped'] : ['stripped', 'absent'];
    const figures = {};
    for (const side of order) figures[side] = await count(side === 'absent' ? root : stripped);
    const own = side => figures[side].total - figures[side].runtime;
    const ratio = own('absent') / own('stripped');
    ratios.push(ratio);
    const per = n => (n / events).toFixed(0);
    const line = side =>
      `${side} ${per(figures[side].total)} (JavaScript ${per(figures[side].jit)}, ` +
      `without GC/compilers ${per(own(side))})`;
    console.log(
      `run ${run}: instructions per ${only || 'post + postLocal'}: ${line('absent')}, ${line('stripped')}; absent/stripped ` +
        `${ratio.toFixed(4)}x without GC/compilers, JavaScript ${(figures.absent.jit / figures.stripped.jit).toFixed(4)}x ` +
        `(${((figures.absent.jit - figures.stripped.jit) / events).toFixed(1)} per event), ` +
        `${(figures.absent.total / figures.stripped.total).toFixed(4)}x all`,
    );
  }
} finally {
  rmSync(stripped, { recursive: true, force: true });
}
const sorted = [...ratios].sort((a, b) => a - b);
const mid = sorted[sorted.length >> 1];
console.log(
  `absent/stripped instructions without GC/compilers: median ${mid.toFixed(4)}x (range ${sorted[0].toFixed(4)}–${sorted.at(-1).toFixed(4)}); ` +
    `${mid <= 1.05 ? 'within' : 'ABOVE'} the 5% budget`,
);
