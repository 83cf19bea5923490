import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { nativeAddon } from '../../../lib/ffi/native-addon.js';
import { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { buildNative, fixture } from './ffi-fixtures.js';

// lib/ffi/native/host.cc and queue.h, the completion path: a wake-up of the
// event loop delivers every answer in the answer ring (and on its overflow
// stack) and then those that arrived while it delivered (they do not wake
// the loop again), and no answer is lost or delivered twice however many
// complete at once, wrap around the ring or overflow it. Counted, not timed.

const opened: NativeRuntime[] = [];
function load(lib: string, cfg: string): NativeRuntime {
  const runtime = NativeRuntime.load(lib, { cfg: `${cfg};${uniqueName('drain')}` });
  opened.push(runtime);
  return runtime;
}

const dir = tempDir('herald-drain-');
const stats = () => nativeAddon().stats();

/** Blocks the JS thread (no turn of the loop) until `condition` holds; throws after 30 s. */
function blockUntil(condition: () => boolean, what: string): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
    Atomics.wait(cell, 0, 0, 1);
  }
}

beforeAll(() => buildNative(), 120_000);
afterAll(() => {
  for (const runtime of opened) runtime.close();
});

describe('FFI completions: one wake-up drains what arrives while it delivers', () => {
  it('delivers an answer that arrives during a drain in that drain, without a wake-up of its own', async () => {
    const gate = load(fixture('gate'), 'threads=1');
    const echo = load(fixture('echo'), 'threads=1');
    const flag = path.join(dir, `${uniqueName('flag')}`);
    // The gate's poller answers once `flag` exists, and only this test's
    // first answer's continuation creates it: that continuation runs inside
    // the wake-up that delivers it, and holds it until the gate's answer is
    // waiting in the answer ring. So the gate's answer arrives during a drain.
    const late = gate.call(`file:${flag}`);
    await waitFor(() => gate.stats().idlePollers === 0 && gate.stats().queued === 0);
    const before = stats();
    const first = echo.call('first').then(answer => {
      expect(existsSync(flag)).toBe(false);
      writeFileSync(flag, '');
      blockUntil(() => stats().completionsWaiting, "the gate's answer");
      return answer.toString();
    });
    expect(await first).toBe('first');
    expect((await late).toString()).toBe('found');
    const after = stats();
    expect(after.answers - before.answers).toBe(2);
    expect(after.wakeups - before.wakeups).toBe(1);
    expect(after.lateAnswers - before.lateAnswers).toBe(1);
    expect(after.completionsWaiting).toBe(false);
  });

  it('loses no answer when many complete at once, among 20,000 calls in flight up to 1024', async () => {
    const gate = load(fixture('gate'), 'threads=64');
    const control = load(fixture('gate'), 'threads=1');
    const echo = load(fixture('echo'), 'threads=2');
    await control.call('shut');
    const before = stats();
    // 64 pollers wait on the gate; they all answer when it opens.
    const held = Array.from({ length: 64 }, () => gate.call('hold'));
    await waitFor(() => gate.stats().idlePollers === 0 && gate.stats().queued === 0);
    let next = 0;
    let wrong = 0;
    const caller = async (): Promise<void> => {
      while (next < 20_000) {
        const i = next++;
        // Sizes up to 5,000 bytes: slab slices and Buffers of their own.
        const request = Buffer.alloc(1 + ((i * 37) % 5000), i & 0xff);
        if (i === 10_000) await control.call('open');
        const answer = await echo.call(request);
        if (!answer.equals(request)) wrong++;
      }
    };
    await Promise.all(Array.from({ length: 1024 }, caller));
    const answers = await Promise.all(held);
    expect(answers.map(answer => answer.toString())).toEqual(Array(64).fill('held'));
    expect(wrong).toBe(0);
    const after = stats();
    // Every call answered once: 20,000 echoes, 64 held, the one opening the gate.
    expect(after.answers - before.answers).toBe(20_000 + 64 + 1);
    // Never more answers waiting than calls in flight (1,089), fewer than
    // the ring's 2,048 cells: all of them went through the ring, wrapping
    // around it nine times.
    expect(after.ringAnswers - before.ringAnswers).toBe(20_000 + 64 + 1);
    expect(after.overflowAnswers - before.overflowAnswers).toBe(0);
    expect(after.awaited).toBe(0);
    expect(after.completionsWaiting).toBe(false);
    for (const runtime of [gate, echo, control]) {
      const { inFlight, calls, answered } = runtime.stats();
      expect({ inFlight, unanswered: calls - answered }).toEqual({ inFlight: 0, unanswered: 0 });
    }
  }, 120_000);

  it('delivers answers that overflow the ring from the stack, abandoned calls mixed in', async () => {
    const threads = 4;
    const echo = NativeRuntime.load(fixture('echo'), {
      cfg: `threads=${threads};${uniqueName('overflow')}`,
      maxQueue: 10_000,
    });
    opened.push(echo);
    // Out of the wake-up that resolved the previous test's last call: calls
    // made during a delivery are posted when it ends, and this test blocks.
    await new Promise(resolve => setImmediate(resolve));
    const before = stats();
    const total = 6000;
    const aborts = Array.from({ length: total }, () => new AbortController());
    const requests = Array.from({ length: total }, (_, i) => Buffer.from(`call-${i}`));
    // Every call is posted before the JS thread yields, and every answer
    // arrives while it is blocked: 6,000 answers wait at once, more than the
    // ring's 2,048 cells, so the rest go on the overflow stack.
    const calls = requests.map((request, i) =>
      echo.call(request, { signal: aborts[i].signal }).then(
        answer => (answer.equals(request) ? 'answered' : 'wrong'),
        () => 'abandoned',
      ),
    );
    // A third abandoned before they are answered (some may be already)...
    for (let i = 0; i < total; i += 3) aborts[i].abort();
    blockUntil(() => {
      const { queued, idlePollers } = echo.stats();
      return queued === 0 && idlePollers === threads;
    }, 'every call answered');
    // ...and a third once their answers wait in the ring or on the stack.
    for (let i = 1; i < total; i += 3) aborts[i].abort();
    const outcomes = await Promise.all(calls);
    const count = (what: string) => outcomes.filter(outcome => outcome === what).length;
    expect({ answered: count('answered'), abandoned: count('abandoned') }).toEqual({
      answered: total / 3,
      abandoned: (total * 2) / 3,
    });
    for (let i = 2; i < total; i += 3) expect(outcomes[i]).toBe('answered');
    const after = stats();
    // Abandoned calls' answers come back too (and are freed): every one of
    // the 6,000, each once, some through the ring and some through the stack.
    expect(after.answers - before.answers).toBe(total);
    const ring = after.ringAnswers - before.ringAnswers;
    const overflow = after.overflowAnswers - before.overflowAnswers;
    expect(ring + overflow).toBe(total);
    expect(ring).toBeGreaterThanOrEqual(2048);
    expect(overflow).toBeGreaterThan(0);
    expect(after.awaited).toBe(0);
    expect(after.completionsWaiting).toBe(false);
    // The abandoned calls' answers arrived late and were freed.
    const { inFlight, calls: made, answered, late } = echo.stats();
    expect({ inFlight, made, answered, late }).toEqual({
      inFlight: 0,
      made: total,
      answered: total / 3,
      late: (total * 2) / 3,
    });
  }, 120_000);

  it('lets go of the Buffer over a slab once no answer can come from it', async () => {
    const echo = load(fixture('echo'), 'threads=2');
    const request = Buffer.alloc(4096, 0x33);
    // 4,000 answers of 4 KiB fill about 32 slabs of 512 KiB.
    let next = 0;
    const caller = async (): Promise<void> => {
      while (next++ < 4000) await echo.call(request);
    };
    await Promise.all(Array.from({ length: 64 }, caller));
    // The last answer resolves inside the wake-up that delivers it, before
    // that wake-up closes its drained slabs (one wake-up can span several):
    // look once it has returned.
    await new Promise(resolve => setImmediate(resolve));
    // At most the slab being filled, and one the answering threads left
    // after the last delivery, stay open until the next wake-up.
    expect(stats().openSlabs).toBeLessThanOrEqual(2);
  }, 60_000);
});
