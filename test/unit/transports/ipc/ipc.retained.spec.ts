import { Fifo } from '../../../../lib/common/fifo.js';
import { WarningLimiter } from '../../../../lib/common/warning-limiter.js';
import type { PublishResult } from '../../../../lib/interfaces/transport.interface.js';
import { Retained, type PendingFrame } from '../../../../lib/transports/ipc/ipc.retained.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { waitFor } from '../../../helpers/wait-for.js';

function frame(seq: number, finished = true): PendingFrame {
  return {
    seq,
    chunk: Buffer.alloc(0),
    start: 0,
    end: 0,
    batch: {
      results: [] as PublishResult[],
      deadline: 0,
      remaining: 1,
      resolve: () => undefined,
    },
    index: 0,
    finished,
    sent: true,
    replay: false,
    ackedAt: Date.now(),
  };
}

function setup(limit = 10, postTimeoutMs = 60_000) {
  const logger = memoryLogger();
  const finished: number[] = [];
  const retained = new Retained(
    new WarningLimiter(logger),
    postTimeoutMs,
    () => limit,
    f => {
      f.finished = true;
      finished.push(f.seq);
    },
  );
  return { retained, finished, logger };
}

describe('ipc client retained frames', () => {
  it('keeps acknowledged frames until DELIVERED', () => {
    const { retained } = setup();
    for (let seq = 1; seq <= 3; seq++) retained.retain(frame(seq));
    retained.deliveredUpTo(2);
    expect(retained.length).toBe(1);
    // Already delivered: not kept.
    retained.retain(frame(2));
    expect(retained.length).toBe(1);
  });

  it('puts what a dead broker had not delivered everywhere in front of the pending frames, to replay', () => {
    const { retained } = setup();
    retained.retain(frame(1));
    retained.retain(frame(2));
    const pending = new Fifo<PendingFrame>();
    pending.push(frame(3, false));
    const merged = retained.replayInto(pending);
    expect([0, 1, 2].map(i => merged.at(i)!.seq)).toEqual([1, 2, 3]);
    expect(merged.at(0)!.replay).toBe(true);
    expect(merged.at(0)!.sent).toBe(false);
    expect(retained.counters.replayed).toBe(2);
    expect(retained.length).toBe(0);
  });

  it('in the broker process, a post resolves on WITNESSED', () => {
    const { retained, finished } = setup();
    retained.hosting = true;
    retained.retain(frame(1, false));
    retained.retain(frame(2, false));
    retained.witnessedUpTo(1);
    expect(finished).toEqual([1]);
    retained.deliveredUpTo(2);
    expect(finished).toEqual([1, 2]);
  });

  it('with no witness within postTimeoutMs, resolves anyway, counted and logged', async () => {
    const { retained, finished, logger } = setup(10, 5);
    retained.retain(frame(1, false));
    await waitFor(() => finished.length === 1);
    expect(retained.counters.unwitnessedResolved).toBe(1);
    expect(logger.lines.some(l => l.startsWith('warn ipc unwitnessed-post:'))).toBe(true);
  });

  it('is bounded: over the limit the oldest is given up, counted and logged', () => {
    const { retained, logger } = setup(2);
    for (let seq = 1; seq <= 4; seq++) retained.retain(frame(seq));
    expect(retained.length).toBe(2);
    expect(retained.counters.retainedDropped).toBe(2);
    expect(logger.lines.filter(l => l.startsWith('warn ipc retained-dropped:'))).toHaveLength(1);
  });
});
