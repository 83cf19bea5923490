// A process per variant for an in-process bench (bench:local): each variant
// runs in a Node process of its own, forked from the bench file with an
// environment variable naming the variant, set up once and reused by every
// round; the parent keeps the harness's interleaved rounds (runBench). In one
// shared process the variant that ran before moved the next one's events/s by
// up to 2x (type feedback, optimized code and deopts of the code they share,
// GC state): see bench/README.md, "bench:local, a process per variant".
// Variants that share no code on their path and are compared with each other
// can share a process instead (`together`): their parts then run interleaved
// in slices, so that the machine's slow spells, which last seconds and slow
// any allocating code about 1.6x, fall on each of them alike (bench/README.md,
// "bench:local, the two modes").
// The child times its own part: wall and its own CPU around the run, after a
// scavenge; its first warm-up is one untimed part, then full collections.
import { performance } from 'node:perf_hooks';
import { callgrindDump, callgrindInstrumentation } from './harness.callgrind.js';
import { cpuMicros } from './harness.cpu.js';
import { attachOtel } from './harness.otel.js';
import {
  forkVariant,
  nurseryEmptied,
  serveRequests,
  settled,
  type VariantProcess,
} from './harness.process.js';
import type { RunResult, Session, Variant } from './harness.rounds.js';

/** A session that can also run a part of `events` events (a slice of its timed part). */
export interface SlicedSession extends Session {
  slice(events: number): Promise<RunResult>;
}

/** `warm`/`run` name the variant when the process holds more than one (`run <name>`). */
type Request = { type: 'warm' | 'run' | 'close' | `warm ${string}` | `run ${string}` };
type Figures = { events: number; seconds: number; cpu: number };
type Reply =
  | { type: 'ready' | 'warm' | 'closed' }
  | ({ type: 'run' } & Figures)
  | { type: 'error'; message: string };

/** Slices per interleaved part (BENCH_SLICES): each a few tens of ms, well within a spell. */
export const SLICES = Math.max(1, Number(process.env.BENCH_SLICES ?? 10));

/**
 * The names a child's environment variable carries: one variant's name, or a
 * JSON list of the names of the variants that share the process.
 */
function namesOf(value: string): string[] {
  return value.startsWith('[') ? (JSON.parse(value) as string[]) : [value];
}

/** Times `part` in this process: wall and CPU, the young generation emptied before. */
async function timed(part: () => Promise<RunResult>): Promise<Figures> {
  // The young garbage of what ran before out of the way.
  nurseryEmptied();
  await callgrindInstrumentation('on');
  const cpuBefore = cpuMicros();
  const started = performance.now();
  const result = await part();
  const wall = (performance.now() - started) / 1000;
  const cpu = cpuMicros() - cpuBefore;
  await callgrindInstrumentation('off');
  // One dump per timed part or slice: its counts alone.
  await callgrindDump();
  return {
    events: result.events,
    seconds: result.seconds ?? wall,
    cpu: cpu + (result.childCpuMicros ?? 0),
  };
}

interface Entry {
  name: string;
  session: Session;
  primed: boolean;
  /** Its figures from the last interleaved part, until the parent asks for them. */
  pending?: Figures;
}

/**
 * The parts of every variant of this process, interleaved: SLICES slices of
 * `events / SLICES` each, the order of the variants reversed every slice
 * (ABBA) and every part; each variant's figures summed over its slices.
 */
async function interleaved(entries: Entry[], events: number, part: number): Promise<void> {
  const totals = entries.map(() => ({ events: 0, seconds: 0, cpu: 0 }));
  for (let s = 0; s < SLICES; s++) {
    const size = Math.floor((events * (s + 1)) / SLICES) - Math.floor((events * s) / SLICES);
    const order = entries.map((_, i) => i);
    if ((s + part) % 2 === 1) order.reverse();
    for (const i of order) {
      const session = entries[i].session as Partial<SlicedSession>;
      if (!session.slice) throw new Error(`${entries[i].name} cannot run in slices`);
      const figures = await timed(() => session.slice!(size));
      totals[i].events += figures.events;
      totals[i].seconds += figures.seconds;
      totals[i].cpu += figures.cpu;
    }
  }
  entries.forEach((entry, i) => (entry.pending = totals[i]));
}

/**
 * The child side: sets up the variant(s) named by `names` (see
 * {@link inOwnProcesses}) of `variants` once and answers the parent's
 * requests (warm, run, close) until it closes. With more than one variant,
 * the first `run` of a round runs every variant's part, interleaved, and the
 * others' `run` answer with their share of it; `events` is the size of a part.
 */
export async function runLocalChild(
  variants: Variant[],
  names: string,
  events: number,
): Promise<void> {
  const otel = await attachOtel();
  const entries: Entry[] = [];
  for (const name of namesOf(names)) {
    const variant = variants.find(v => v.name === name);
    if (!variant) throw new Error(`no variant ${JSON.stringify(name)}`);
    entries.push({ name, session: await variant.setup(), primed: false });
  }
  const entryOf = (type: string): Entry => {
    const space = type.indexOf(' ');
    const found =
      space < 0 && entries.length === 1
        ? entries[0]
        : entries.find(e => e.name === type.slice(space + 1));
    if (!found) throw new Error(`request ${JSON.stringify(type)} names no variant of this process`);
    return found;
  };
  let parts = 0;
  serveRequests<Request, Reply>(async request => {
    if (request.type === 'close') {
      for (const { session } of entries) await session.teardown?.();
      await otel.stop();
      return { type: 'closed' };
    }
    const entry = entryOf(request.type);
    if (request.type.startsWith('warm')) {
      // Once, before round 1: a whole untimed part (the code compiled for this
      // variant alone), then full collections. Not in later rounds: a forced
      // full collection in a process that sat idle shrinks its young generation
      // (redis24d), so the part after it would pay for its place in the round.
      if (!entry.primed) {
        await entry.session.warmUp?.();
        await entry.session.run();
        await settled();
        entry.primed = true;
      }
      return { type: 'warm' };
    }
    if (entries.length === 1) return { type: 'run', ...(await timed(() => entry.session.run())) };
    if (!entry.pending) await interleaved(entries, events, parts++);
    const figures = entry.pending!;
    entry.pending = undefined;
    return { type: 'run', ...figures };
  });
}

type Remote = VariantProcess<Request, Reply>;

/**
 * The parent side: `variants` as variants whose rounds run in a process of
 * their own each (`file` forked with `env` set to the variant's name, which
 * must call {@link runLocalChild}), but the variants of each list in
 * `together` share one process (`env` set to the JSON list of their names;
 * each request names its variant) and run interleaved. A variant's process
 * starts at its first round, or earlier with `start()`; `close()` ends them all.
 */
export function inOwnProcesses(
  variants: Variant[],
  file: string,
  env: string,
  together: string[][] = [],
): { variants: Variant[]; start(names: string[]): Promise<void>; close(): Promise<void> } {
  const remotes = new Map<string, Promise<Remote>>();
  /** The value of `env` for the process of the variant named `name`. */
  const processOf = (name: string): string => {
    const group = together.find(names => names.length > 1 && names.includes(name));
    return group ? JSON.stringify(group) : name;
  };
  const started = (name: string): Promise<Remote> => {
    const key = processOf(name);
    let found = remotes.get(key);
    if (!found) {
      found = forkVariant<Request, Reply>(file, env, key);
      found.catch(() => undefined);
      remotes.set(key, found);
    }
    return found;
  };
  return {
    variants: variants.map(variant => ({
      name: variant.name,
      async setup(): Promise<Session> {
        const child = await started(variant.name);
        const shared = processOf(variant.name) !== variant.name;
        return {
          async warmUp() {
            await child.ask(shared ? `warm ${variant.name}` : 'warm');
          },
          async run(): Promise<RunResult> {
            const reply = await child.ask(shared ? `run ${variant.name}` : 'run');
            if (reply.type !== 'run') throw new Error(`${variant.name}: no run reply`);
            // The parent's own CPU in this call (waiting) is added by the harness.
            return { events: reply.events, seconds: reply.seconds, childCpuMicros: reply.cpu };
          },
        };
      },
    })),
    /** Starts the processes of `names` together (they load and set up in parallel, untimed). */
    async start(names) {
      await Promise.all(names.map(started));
    },
    async close() {
      const all = await Promise.allSettled(remotes.values());
      remotes.clear();
      await Promise.all(
        all.map(r => (r.status === 'fulfilled' ? r.value.close() : Promise.resolve())),
      );
    },
  };
}
