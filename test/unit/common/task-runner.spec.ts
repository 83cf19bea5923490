import { TaskRunner } from '../../../lib/common/task-runner.js';

/** A runner whose tasks end when the test says so (or at once, for 'sync'). */
function make(concurrency: number, options: { holding?: boolean } = {}) {
  const started: string[] = [];
  const turns: number[] = [];
  const runner: TaskRunner<string> = new TaskRunner<string>({
    concurrency,
    holding: options.holding,
    execute: task => {
      started.push(task);
      return task.startsWith('sync');
    },
    onTurn: () => turns.push(runner.busy),
  });
  return { runner, started, turns };
}

describe('TaskRunner', () => {
  it('runs a task at once when a slot is free, queues beyond concurrency, in arrival order', () => {
    const { runner, started } = make(2);
    for (const task of ['a', 'b', 'c', 'd']) runner.submit(task);
    expect(started).toEqual(['a', 'b']);
    expect([runner.running, runner.queued, runner.busy]).toEqual([2, 2, 4]);
    runner.finished();
    expect(started).toEqual(['a', 'b', 'c']);
    runner.finished();
    runner.finished();
    runner.finished();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    expect(runner.busy).toBe(0);
  });

  it('a task that ends at once frees its slot at once; onTurn follows each turn', () => {
    const { runner, started, turns } = make(1);
    runner.submit('sync-1');
    runner.submit('sync-2');
    expect(started).toEqual(['sync-1', 'sync-2']);
    expect(runner.busy).toBe(0);
    expect(turns).toEqual([0, 0]);
  });

  it('holds tasks until start(), then runs them in arrival order', () => {
    const { runner, started } = make(1, { holding: true });
    runner.submit('sync-1');
    runner.submit('sync-2');
    expect(started).toEqual([]);
    expect(runner.started).toBe(false);
    expect(runner.queued).toBe(2);
    runner.start();
    expect(started).toEqual(['sync-1', 'sync-2']);
    expect(runner.started).toBe(true);
  });

  it('never recurses: a task submitted from inside a running task runs after it, on the same loop', () => {
    const order: string[] = [];
    let depth = 0;
    let deepest = 0;
    const runner: TaskRunner<number> = new TaskRunner<number>({
      concurrency: 1,
      execute: n => {
        depth++;
        deepest = Math.max(deepest, depth);
        order.push(`start ${n}`);
        if (n < 3) runner.submit(n + 1);
        order.push(`end ${n}`);
        depth--;
        return true;
      },
    });
    runner.submit(1);
    expect(order).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
    expect(deepest).toBe(1);
  });

  it('whenIdle resolves once nothing runs or waits; drain returns what waited without running it', async () => {
    const { runner, started } = make(1);
    runner.submit('a');
    runner.submit('b');
    runner.submit('c');
    let idle = false;
    const waiting = runner.whenIdle().then(() => (idle = true));
    expect(runner.drain()).toEqual(['b', 'c']);
    await Promise.resolve();
    expect(idle).toBe(false);
    runner.finished();
    await waiting;
    expect(idle).toBe(true);
    expect(started).toEqual(['a']);
    await expect(runner.whenIdle()).resolves.toBeUndefined();
  });

  it('a throwing task ends (its slot is freed) and the throw reaches the caller', () => {
    const runner = new TaskRunner<string>({
      concurrency: 1,
      execute: () => {
        throw new Error('boom');
      },
    });
    expect(() => runner.submit('x')).toThrow('boom');
    expect(runner.running).toBe(0);
  });

  it('lets its owner claim a free slot and run a task itself, under the same rules as submit', () => {
    const { runner, started, turns } = make(1, { holding: true });
    expect(runner.claim()).toBe(false); // holding: the owner submits instead
    runner.start();
    expect(runner.claim()).toBe(true);
    expect(runner.running).toBe(1);
    // Inside the claimed turn nothing else runs at once: it waits, in order.
    expect(runner.claim()).toBe(false);
    runner.submit('sync-inner');
    expect(started).toEqual([]);
    runner.release(true);
    expect(started).toEqual(['sync-inner']);
    expect([runner.running, runner.queued]).toEqual([0, 0]);
    expect(turns.at(-1)).toBe(0);
    // A claimed task that goes on holds its slot until finished().
    expect(runner.claim()).toBe(true);
    runner.release(false);
    expect(runner.claim()).toBe(false);
    runner.submit('sync-after');
    expect(started).toEqual(['sync-inner']);
    runner.finished();
    expect(started).toEqual(['sync-inner', 'sync-after']);
    expect(runner.busy).toBe(0);
  });

  it('counts waiting tasks in a field, and lets an owner end a claimed turn inline (released)', async () => {
    const { runner, started, turns } = make(1);
    expect(runner.claim()).toBe(true);
    runner.submit('sync-a');
    runner.submit('sync-b');
    expect([runner.waiting, runner.queued]).toEqual([2, 2]);
    // What release(true) does, by hand: the slot back, then released().
    runner.active--;
    runner.pumping = false;
    runner.released();
    expect(started).toEqual(['sync-a', 'sync-b']);
    expect([runner.waiting, runner.busy]).toEqual([0, 0]);
    expect(turns.at(-1)).toBe(0);
    // With nothing waiting, released() ends the turn: idle waiters resolve.
    expect(runner.claim()).toBe(true);
    const idle = runner.whenIdle();
    expect(runner.idleWaiters.length).toBe(1);
    runner.active--;
    runner.pumping = false;
    runner.released();
    await idle;
    expect(runner.idleWaiters.length).toBe(0);
    // drain() empties the count with the queue.
    const held = make(1, { holding: true }).runner;
    held.submit('x');
    expect(held.drain()).toEqual(['x']);
    expect([held.waiting, held.queued]).toEqual([0, 0]);
  });
});
