import { IdleWaiters } from '../../../lib/bus/event-bus.idle.js';

describe('IdleWaiters', () => {
  it('resolves at once when idle, and on notify once idle', async () => {
    let busy = true;
    const waiters = new IdleWaiters(() => !busy);
    const waiting = waiters.wait();
    let done: boolean | undefined;
    void waiting.then(value => (done = value));
    waiters.notify();
    await Promise.resolve();
    expect(done).toBeUndefined();
    busy = false;
    waiters.notify();
    await expect(waiting).resolves.toBe(true);
    await expect(waiters.wait(1)).resolves.toBe(true);
  });

  it('resolves false when the timeout fires first, and forgets that waiter', async () => {
    let busy = true;
    const waiters = new IdleWaiters(() => !busy);
    await expect(waiters.wait(5)).resolves.toBe(false);
    busy = false;
    expect(() => waiters.notify()).not.toThrow();
  });

  it('counts its waiters in a field: up on wait, down on notify and on timeout', async () => {
    let busy = true;
    const waiters = new IdleWaiters(() => !busy);
    expect(waiters.waiting).toBe(0);
    const first = waiters.wait();
    const timed = waiters.wait(5);
    expect(waiters.waiting).toBe(2);
    await expect(timed).resolves.toBe(false);
    expect(waiters.waiting).toBe(1);
    busy = false;
    waiters.notify();
    expect(waiters.waiting).toBe(0);
    await expect(first).resolves.toBe(true);
  });
});
