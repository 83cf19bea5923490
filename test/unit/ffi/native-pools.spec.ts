import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { nativeAddon } from '../../../lib/ffi/native-addon.js';
import { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import { uniqueName } from '../../helpers/services.js';
import { buildNative, fixture } from './ffi-fixtures.js';

// lib/ffi/native/pools.h: in steady state a call allocates nothing natively.
// Counted, not timed: the host's malloc counters of tasks and answer slabs
// must stay flat over 40k calls once warm.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Collects garbage and lets V8 finish freeing the ArrayBuffers over slabs
 * (the addon returns a slab once V8 dropped its reference, seen when the
 * next slab gets a Buffer).
 */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise(resolve => setImmediate(resolve));
  }
}

let runtime: NativeRuntime;
beforeAll(() => {
  buildNative();
  runtime = NativeRuntime.load(fixture('echo'), { cfg: `threads=2;${uniqueName('pools')}` });
}, 120_000);
afterAll(() => runtime.close());

/** `rounds` x `perRound` echo calls, `inFlight` at a time, collecting garbage between rounds. */
async function rounds(size: number, inFlight: number, count: number, perRound: number) {
  const request = Buffer.alloc(size, 0x5a);
  for (let done = 0; done < count; done += perRound) {
    let next = 0;
    const caller = async (): Promise<void> => {
      while (next++ < perRound) {
        const answer = await runtime.call(request);
        if (!answer.equals(request)) throw new Error(`wrong echo of ${size} bytes`);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, caller));
    await collect();
  }
}

describe('FFI host pools: no native allocation per call in steady state', () => {
  // A slab holds 128 answers of 4 KiB: without reuse these calls would take
  // hundreds of slabs. With reuse the pool only grows when more slabs are in
  // use at once than in the warm-up, which depends on when V8 collects the
  // Buffers over them (a scavenge more or less within a round of 5,000
  // calls): a few, never a tenth of what no reuse would take.
  it.each([
    ['4 KiB x 64 in flight', 4096, 64, 40_000],
    ['4 KiB x 1024 in flight', 4096, 1024, 40_000],
    ['512 B x 1 in flight', 512, 1, 10_000],
    ['64 B x 256 in flight', 64, 256, 40_000],
  ])(
    '%s: tasks and slabs are reused',
    async (_label, size, inFlight, count) => {
      const start = nativeAddon().stats();
      await rounds(size, inFlight, count / 2, 5_000);
      const warm = nativeAddon().stats();
      await rounds(size, inFlight, count, 5_000);
      const after = nativeAddon().stats();
      expect(after.answers - warm.answers).toBe(count);
      // Tasks alive at once: the calls in flight, plus answered tasks of a
      // wake-up still being delivered while their callers already call again.
      expect(after.taskAllocations - start.taskAllocations).toBeLessThanOrEqual(2 * inFlight + 64);
      expect(after.taskAllocations - warm.taskAllocations).toBeLessThanOrEqual(inFlight / 8 + 2);
      const withoutReuse = (count * Math.min(size, nativeAddon().copyMax)) / nativeAddon().slabSize;
      expect(after.slabAllocations - warm.slabAllocations).toBeLessThanOrEqual(
        Math.max(2, withoutReuse / 10),
      );
    },
    120_000,
  );

  // V8 counts the bytes of each ArrayBuffer it frees as external memory and
  // runs a full GC once that count grew 64 MiB since the last one: slab
  // bytes counted once per Buffer made a full GC every few hundred slabs
  // (bench:ffi: 5-7 per 100k calls of 4 KiB). The pool's slabs are counted
  // once, as they are allocated; the Buffers over them add nothing.
  it('answers held by JS add no external memory per Buffer (slabs counted once, by the pool)', async () => {
    await rounds(4096, 64, 10_000, 5_000);
    const before = process.memoryUsage().external;
    const held: Buffer[] = [];
    const request = Buffer.alloc(4096, 0x33);
    let next = 0;
    const caller = async (): Promise<void> => {
      while (next++ < 5_000) held.push(await runtime.call(request));
    };
    await Promise.all(Array.from({ length: 64 }, caller));
    const grown = process.memoryUsage().external - before;
    // 5,000 answers of 4 KiB held: ~20 MiB over ~40 slabs.
    expect(held).toHaveLength(5_000);
    expect(held.every(answer => answer.equals(request))).toBe(true);
    expect(grown).toBeLessThan(4 * 1024 * 1024);
  }, 120_000);

  it('keeps what a caller holds: answers of reused slabs stay intact while referenced', async () => {
    const kept: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const answer = await runtime.call(Buffer.alloc(3000, i & 0xff));
      if (i % 100 === 0) kept.push(answer);
    }
    await collect();
    await rounds(4096, 64, 20_000, 5_000);
    kept.forEach((answer, k) =>
      expect(answer.equals(Buffer.alloc(3000, (k * 100) & 0xff))).toBe(true),
    );
  }, 120_000);
});
