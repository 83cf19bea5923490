// A process per variant for an in-process bench (bench:local): each variant
// runs in a Node process of its own, forked from the bench file with an
// environment variable naming the variant, set up once and reused by every
// round; the parent keeps the harness's interleaved rounds (runBench). In one
// shared process the variant that ran before moved the next one's events/s by
// up to 2x (type feedback, optimized code and deopts of the code they share,
// GC state): see bench/README.md, "bench:local, a process per variant".
// The child times its own part: wall and its own CPU around the run, after a
// scavenge; its first warm-up is one untimed part, then full collections.
import { performance } from 'node:perf_hooks';
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

type Request = { type: 'warm' | 'run' | 'close' };
type Reply =
  | { type: 'ready' | 'warm' | 'closed' }
  | { type: 'run'; events: number; seconds: number; cpu: number }
  | { type: 'error'; message: string };

/**
 * The child side: sets up the variant named `name` of `variants` once and
 * answers the parent's requests (warm, run, close) until it closes.
 */
export async function runLocalChild(variants: Variant[], name: string): Promise<void> {
  const otel = await attachOtel();
  const variant = variants.find(v => v.name === name);
  if (!variant) throw new Error(`no variant ${JSON.stringify(name)}`);
  const session = await variant.setup();
  let primed = false;
  serveRequests<Request, Reply>(async request => {
    switch (request.type) {
      case 'warm':
        // Once, before round 1: a whole untimed part (the code compiled for this
        // variant alone), then full collections. Not in later rounds: a forced
        // full collection in a process that sat idle shrinks its young generation
        // (redis24d), so the part after it would pay for its place in the round.
        if (!primed) {
          await session.warmUp?.();
          await session.run();
          await settled();
          primed = true;
        }
        return { type: 'warm' };
      case 'run': {
        // The young garbage of what ran before (here: only this variant) out of the way.
        nurseryEmptied();
        const cpuBefore = cpuMicros();
        const started = performance.now();
        const result = await session.run();
        const wall = (performance.now() - started) / 1000;
        const cpu = cpuMicros() - cpuBefore;
        return {
          type: 'run',
          events: result.events,
          seconds: result.seconds ?? wall,
          cpu: cpu + (result.childCpuMicros ?? 0),
        };
      }
      case 'close':
        await session.teardown?.();
        await otel.stop();
        return { type: 'closed' };
    }
  });
}

type Remote = VariantProcess<Request, Reply>;

/**
 * The parent side: `variants` as variants whose rounds run in a process of
 * their own each (`file` forked with `env` set to the variant's name, which
 * must call {@link runLocalChild}). A variant's process starts at its first
 * round, or earlier with `start()`; `close()` ends them all.
 */
export function inOwnProcesses(
  variants: Variant[],
  file: string,
  env: string,
): { variants: Variant[]; start(names: string[]): Promise<void>; close(): Promise<void> } {
  const remotes = new Map<string, Promise<Remote>>();
  const started = (name: string): Promise<Remote> => {
    let found = remotes.get(name);
    if (!found) {
      found = forkVariant<Request, Reply>(file, env, name);
      found.catch(() => undefined);
      remotes.set(name, found);
    }
    return found;
  };
  return {
    variants: variants.map(variant => ({
      name: variant.name,
      async setup(): Promise<Session> {
        const child = await started(variant.name);
        return {
          async warmUp() {
            await child.ask('warm');
          },
          async run(): Promise<RunResult> {
            const reply = await child.ask('run');
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
