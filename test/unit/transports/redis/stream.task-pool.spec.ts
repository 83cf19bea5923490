import {
  TaskPool,
  type StreamSettlingHandler,
} from '../../../../lib/transports/redis/stream.task-pool.js';
import type { StreamMessage } from '../../../../lib/transports/redis/stream.entry.js';

function message(id: string): StreamMessage {
  return { stream: 's', id, fields: {}, raw: [], deliveries: 1 };
}

describe('TaskPool', () => {
  it('runs at most `concurrency` calls at once, in arrival order, and says when it is idle', async () => {
    const started: string[] = [];
    const finishers: (() => void)[] = [];
    const handler: StreamSettlingHandler = (m, done) => {
      started.push(m.id);
      finishers.push(() => done());
    };
    const pool = new TaskPool(2, () => handler);
    const outcomes: unknown[] = [];
    for (const id of ['a', 'b', 'c'])
      pool.enqueue({ message: message(id), done: e => outcomes.push(e) });
    expect(started).toEqual(['a', 'b']);
    expect(pool.busy).toBe(3);
    let idle = false;
    void pool.whenIdle().then(() => (idle = true));
    finishers.shift()!();
    expect(started).toEqual(['a', 'b', 'c']);
    finishers.shift()!();
    finishers.shift()!();
    await Promise.resolve();
    expect(idle).toBe(true);
    expect(outcomes).toEqual([undefined, undefined, undefined]);
  });

  it('a throw is a failure, never undefined; done twice counts once', () => {
    const outcomes: unknown[] = [];
    const pool = new TaskPool(1, () => (_m, done) => {
      done();
      done(new Error('late'));
    });
    pool.enqueue({ message: message('a'), done: e => outcomes.push(e) });
    const throwing = new TaskPool(1, () => () => {
      throw undefined;
    });
    throwing.enqueue({ message: message('b'), done: e => outcomes.push(e) });
    expect(outcomes[0]).toBeUndefined();
    expect(outcomes[1]).toBeInstanceOf(Error);
    expect(outcomes).toHaveLength(2);
    expect(pool.busy + throwing.busy).toBe(0);
  });
});
