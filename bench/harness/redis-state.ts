// bench:redis's view of the state each variant starts from and leaves behind:
// this process's collector (counts and pauses per kind, PerformanceObserver
// 'gc'), its heap (used, committed, the young generation's capacity) and the
// Redis server's (memory, keys, lazy frees, CPU). Load-independent evidence
// for what one variant leaves to the next (BENCH_TRACE=1 prints it per round).
import { PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { Redis } from 'ioredis';

/** Collections so far, by kind, and their pause total (ms), since the observer started. */
export interface GcTotals {
  minor: number;
  major: number;
  incremental: number;
  weak: number;
  pauseMs: number;
  majorPauseMs: number;
}

const totals: GcTotals = {
  minor: 0,
  major: 0,
  incremental: 0,
  weak: 0,
  pauseMs: 0,
  majorPauseMs: 0,
};
let observer: PerformanceObserver | undefined;

/** Starts counting collections (idempotent). */
export function watchGc(): void {
  if (observer) return;
  observer = new PerformanceObserver(list => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
      totals.pauseMs += entry.duration;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) totals.minor++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        totals.major++;
        totals.majorPauseMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) totals.incremental++;
      else totals.weak++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

export function stopGc(): void {
  observer?.disconnect();
  observer = undefined;
}

/** The process's heap and collector at one moment. */
export interface NodeState {
  gc: GcTotals;
  /** Bytes. */
  heapUsed: number;
  heapCommitted: number;
  newSpace: number;
  oldSpaceUsed: number;
}

export function nodeState(): NodeState {
  const heap = v8.getHeapStatistics();
  const spaces = v8.getHeapSpaceStatistics();
  const space = (name: string) => spaces.find(s => s.space_name === name);
  return {
    gc: { ...totals },
    heapUsed: heap.used_heap_size,
    heapCommitted: heap.total_heap_size,
    newSpace: space('new_space')?.space_size ?? 0,
    oldSpaceUsed: space('old_space')?.space_used_size ?? 0,
  };
}

/** The Redis server at one moment (`INFO`). */
export interface ServerState {
  /** user + sys, µs. */
  cpu: number;
  usedMemory: number;
  rss: number;
  keys: number;
  lazyfreePending: number;
  lazyfreed: number;
  expired: number;
  evicted: number;
}

export async function serverState(redis: Redis): Promise<ServerState> {
  const info = await redis.info('all');
  const num = (name: string): number =>
    Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return {
    cpu: (num('used_cpu_user') + num('used_cpu_sys')) * 1e6,
    usedMemory: num('used_memory'),
    rss: num('used_memory_rss'),
    keys: Number(/^db0:keys=(\d+)/m.exec(info)?.[1] ?? 0),
    lazyfreePending: num('lazyfree_pending_objects'),
    lazyfreed: num('lazyfreed_objects'),
    expired: num('expired_keys'),
    evicted: num('evicted_keys'),
  };
}

/** One variant's timed part: the state before it and after it. */
export interface Window {
  round: number;
  variant: string;
  /** The variant that ran just before (its teardown done), or '' for the first. */
  after: string;
  events: number;
  node: [NodeState, NodeState];
  server: [ServerState, ServerState];
}

const mb = (bytes: number): string => (bytes / 1048576).toFixed(1);

/** One line per window: what the collector did in it and the state it started from. */
export function windowLine(w: Window): string {
  const [a, b] = w.node;
  const [s, t] = w.server;
  const per = 1000 / w.events;
  return (
    `trace r${w.round} ${w.variant.padEnd(20)} after ${(w.after || '-').padEnd(20)} ` +
    `gc/1k ev: minor ${((b.gc.minor - a.gc.minor) * per).toFixed(2)} major ${b.gc.major - a.gc.major} ` +
    `incr ${b.gc.incremental - a.gc.incremental}; pause ${(b.gc.pauseMs - a.gc.pauseMs).toFixed(1)} ms ` +
    `(major ${(b.gc.majorPauseMs - a.gc.majorPauseMs).toFixed(1)}); ` +
    `heap used ${mb(a.heapUsed)}->${mb(b.heapUsed)} MB, committed ${mb(a.heapCommitted)}->${mb(b.heapCommitted)}, ` +
    `new space ${mb(a.newSpace)}->${mb(b.newSpace)}; ` +
    `redis keys ${s.keys}->${t.keys}, mem ${mb(s.usedMemory)}->${mb(t.usedMemory)} MB, rss ${mb(s.rss)}->${mb(t.rss)}, ` +
    `lazyfree pending ${s.lazyfreePending}, lazyfreed +${t.lazyfreed - s.lazyfreed}, ` +
    `expired +${t.expired - s.expired}, evicted +${t.evicted - s.evicted}, ` +
    `cpu ${((t.cpu - s.cpu) / w.events).toFixed(2)} µs/ev`
  );
}
