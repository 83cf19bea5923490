import { BehaviorSubject } from 'rxjs';
import { waitFor } from '../../helpers/wait-for.js';
import { MAX_BATCH_CHARS, Outbox, callTransport } from '../../../lib/bus/event-bus.outbox.js';
import { busCounters } from '../../../lib/bus/event-bus.stats.js';
import {
  QueueFullError,
  silentLogger,
  type Envelope,
  type PublishResult,
  type Transport,
} from '../../../lib/index.js';

function envelope(event: string): Envelope {
  return { id: event, source: 's', event, payload: '1', origin: 'o', occurredAt: '' };
}

class RecordingTransport implements Transport {
  readonly name = 'recording';
  readonly features = {
    reach: 'process' as const,
    guarantee: 'once' as const,
    ordering: 'global' as const,
    uniqueScope: 'process' as const,
    redelivers: false,
    loopback: false,
    persistent: false,
  };
  readonly status$ = new BehaviorSubject({ state: 'connected' as const });
  batches: string[][] = [];
  mode: 'ok' | 'throw' | 'reject' | 'garbage' = 'ok';
  async connect(): Promise<void> {}
  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    this.batches.push(batch.map(e => e.event));
    if (this.mode === 'throw') throw new Error('sync boom');
    if (this.mode === 'reject') return Promise.reject(new Error('async boom'));
    if (this.mode === 'garbage') return Promise.resolve(undefined as never);
    return Promise.resolve(
      batch.map(e =>
        e.event === 'refused'
          ? { ok: false as const, error: new Error('no') }
          : { ok: true as const },
      ),
    );
  }
  stats(): Record<string, number> {
    return {};
  }
  async close(): Promise<void> {}
}

describe('Outbox', () => {
  const make = (maxPending = 10) => {
    const transport = new RecordingTransport();
    const counters = busCounters();
    let settled = 0;
    const outbox = new Outbox(transport, maxPending, counters, silentLogger, () => settled++);
    return { transport, counters, outbox, settled: () => settled };
  };

  it('waits for ready, then publishes everything posted meanwhile as one batch, in order', async () => {
    const { transport, outbox } = make();
    let open!: () => void;
    const ready = new Promise<void>(resolve => (open = resolve));
    const posts = ['a', 'b', 'c'].map(e => outbox.push(envelope(e), ready));
    await Promise.resolve();
    expect(transport.batches).toEqual([]);
    expect(outbox.busy).toBe(true);
    open();
    await expect(Promise.all(posts)).resolves.toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    expect(transport.batches).toEqual([['a', 'b', 'c']]);
    expect(outbox.busy).toBe(false);
  });

  it('is bounded: a post beyond maxPending is refused with QueueFullError', async () => {
    const { outbox } = make(1);
    const never = new Promise<void>(() => undefined);
    void outbox.push(envelope('a'), never);
    await expect(outbox.push(envelope('b'), never)).rejects.toThrow(QueueFullError);
    expect(outbox.hasRoom()).toBe(false);
  });

  it.each(['throw', 'reject', 'garbage'] as const)(
    'a publish that fails (%s) rejects the posts of its batch and counts them',
    async mode => {
      const { transport, outbox, counters, settled } = make();
      transport.mode = mode;
      const posts = [
        outbox.push(envelope('a'), Promise.resolve()),
        outbox.push(envelope('b'), Promise.resolve()),
      ];
      for (const post of posts) await expect(post).rejects.toThrow();
      expect(counters.publishFailed).toBe(2);
      expect(settled()).toBe(1);
      transport.mode = 'ok';
      await expect(outbox.push(envelope('c'), Promise.resolve())).resolves.toEqual({ id: 'c' });
    },
  );

  it('rejects only the envelopes the transport refused', async () => {
    const { outbox, counters } = make();
    const [good, bad] = [
      outbox.push(envelope('good'), Promise.resolve()),
      outbox.push(envelope('refused'), Promise.resolve()),
    ];
    await expect(bad).rejects.toThrow('no');
    await expect(good).resolves.toEqual({ id: 'good' });
    expect(counters.publishFailed).toBe(1);
  });

  it('rejectAll rejects every waiting post with the cause and returns their envelopes', async () => {
    const { outbox } = make();
    const never = new Promise<void>(() => undefined);
    const posts = [outbox.push(envelope('a'), never), outbox.push(envelope('b'), never)];
    const cause = new Error('gave up');
    expect(outbox.rejectAll(cause).map(e => e.event)).toEqual(['a', 'b']);
    for (const post of posts) await expect(post).rejects.toBe(cause);
  });

  it('settles each post of successive batches of varying size with its own result', async () => {
    const { transport, outbox } = make(2000);
    const flushed = async (events: string[]) => {
      const posts = events.map(e => outbox.push(envelope(e), Promise.resolve()));
      return Promise.allSettled(posts);
    };
    const outcome = (settled: PromiseSettledResult<unknown>[]) =>
      settled.map(s => (s.status === 'fulfilled' ? (s.value as { id: string }).id : 'rejected'));
    // Sizes that shrink and grow, a failed publish between, more than one
    // batch's worth in a turn: a resolver or rejecter in the wrong slot
    // would settle a post wrongly.
    expect(outcome(await flushed(['a', 'refused', 'c']))).toEqual(['a', 'rejected', 'c']);
    expect(outcome(await flushed(['refused']))).toEqual(['rejected']);
    transport.mode = 'reject';
    expect(outcome(await flushed(['x', 'y']))).toEqual(['rejected', 'rejected']);
    transport.mode = 'ok';
    const many = Array.from({ length: 1500 }, (_, i) => (i === 1200 ? 'refused' : `e${i}`));
    const settled = outcome(await flushed(many));
    expect(settled).toEqual(many.map(e => (e === 'refused' ? 'rejected' : e)));
    expect(outcome(await flushed(['p', 'q', 'refused', 's']))).toEqual(['p', 'q', 'rejected', 's']);
    expect(transport.batches.map(b => b.length)).toEqual([3, 1, 2, 1000, 500, 4]);
  });

  it('ends a batch once its payloads pass about 1 MiB, so large posts go out in several publishes', async () => {
    const { transport, outbox } = make(2000);
    const big = 'x'.repeat(4096);
    const posts = Array.from({ length: 600 }, (_, i) =>
      outbox.push({ ...envelope(`e${i}`), payload: big }, Promise.resolve()),
    );
    const receipts = await Promise.all(posts);
    expect(receipts.map(r => r.id)).toEqual(Array.from({ length: 600 }, (_, i) => `e${i}`));
    // A batch takes posts until its payloads pass the bound: 257 x 4096 > 1 MiB.
    const perBatch = Math.floor(MAX_BATCH_CHARS / big.length) + 1;
    expect(transport.batches.map(b => b.length)).toEqual([perBatch, perBatch, 600 - 2 * perBatch]);
    expect(transport.batches.flat()).toEqual(receipts.map(r => r.id));
    // Small posts: the count bounds the batch, as before.
    transport.batches = [];
    await Promise.all(
      Array.from({ length: 1200 }, (_, i) => outbox.push(envelope(`s${i}`), Promise.resolve())),
    );
    expect(transport.batches.map(b => b.length)).toEqual([1000, 200]);
  });

  it('hands the transport at most its publishBatchSize posts per publish, each batch settled on its own answer', async () => {
    const transport = Object.assign(new RecordingTransport(), { publishBatchSize: 3 });
    const answers: (() => void)[] = [];
    transport.publish = (batch: readonly Envelope[]) => {
      transport.batches.push(batch.map(e => e.event));
      return new Promise(resolve => answers.push(() => resolve(batch.map(() => ({ ok: true })))));
    };
    const outbox = new Outbox(transport, 100, busCounters(), silentLogger, () => undefined);
    const settled: string[] = [];
    const posts = Array.from({ length: 7 }, (_, i) =>
      outbox.push(envelope(`e${i}`), Promise.resolve()).then(r => settled.push(r.id)),
    );
    await waitFor(() => transport.batches.length === 3);
    expect(transport.batches).toEqual([['e0', 'e1', 'e2'], ['e3', 'e4', 'e5'], ['e6']]);
    // The first batch's posts settle on its answer, not the last batch's.
    answers[0]();
    await waitFor(() => settled.length === 3);
    expect(settled).toEqual(['e0', 'e1', 'e2']);
    answers[1]();
    answers[2]();
    await Promise.all(posts);
    expect(settled).toHaveLength(7);
    // Out of range (0, over 1000, not an integer): the bus's own 1000.
    for (const size of [0, 1001, 2.5]) {
      const other = Object.assign(new RecordingTransport(), { publishBatchSize: size });
      const box = new Outbox(other, 2000, busCounters(), silentLogger, () => undefined);
      await Promise.all(
        Array.from({ length: 1200 }, (_, i) => box.push(envelope(`s${i}`), Promise.resolve())),
      );
      expect(other.batches.map(b => b.length)).toEqual([1000, 200]);
    }
  });

  it('settles each post with its own result when batches are answered out of order', async () => {
    // One promise per batch settles its posts (issue 24): the receipts must
    // still go to the right posts, with the transport's refs.
    const { transport, outbox } = make(3000);
    const answers: (() => void)[] = [];
    transport.publish = (batch: readonly Envelope[]) => {
      transport.batches.push(batch.map(e => e.event));
      return new Promise(resolve =>
        answers.push(() =>
          resolve(
            batch.map(e =>
              e.event.endsWith('x')
                ? { ok: false as const, error: new Error(`refused ${e.event}`) }
                : { ok: true as const, ref: `ref-${e.event}` },
            ),
          ),
        ),
      );
    };
    const events = Array.from({ length: 2500 }, (_, i) => (i % 7 === 3 ? `e${i}x` : `e${i}`));
    const posts = events.map(e => outbox.push(envelope(e), Promise.resolve()));
    await waitFor(() => answers.length === 3);
    expect(transport.batches.map(b => b.length)).toEqual([1000, 1000, 500]);
    for (const answer of answers.reverse()) answer();
    const settled = await Promise.allSettled(posts);
    expect(
      settled.map(s => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    ).toEqual(events.map(e => (e.endsWith('x') ? `refused ${e}` : { id: e, ref: `ref-${e}` })));
    expect(outbox.busy).toBe(false);
  });

  it('callTransport turns a synchronous throw into a rejection', async () => {
    await expect(
      callTransport(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
  });
});
