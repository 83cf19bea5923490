/**
 * Waiters for "nothing left to do": the bus's parts call {@link notify}
 * whenever work ends, and each waiter resolves once `isIdle()` holds — or
 * with false when its timeout fires first, so no wait lasts for ever.
 */
export class IdleWaiters {
  private waiters: (() => void)[] = [];
  /**
   * How many wait, kept equal to the waiters held: a field, so a hot path
   * (`EventBus.postLocal`) tests it inline and calls {@link notify} only
   * when someone waits.
   */
  waiting = 0;

  constructor(private readonly isIdle: () => boolean) {}

  /** Resolves true once idle, false after `timeoutMs` (no timeout: waits until idle). */
  wait(timeoutMs?: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    return new Promise(resolve => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter(waiter => waiter !== done);
          this.waiting = this.waiters.length;
          resolve(false);
        }, timeoutMs);
      }
      this.waiters.push(done);
      this.waiting = this.waiters.length;
    });
  }

  /** Work ended somewhere: resolve the waiters if nothing is left. */
  notify(): void {
    if (this.waiting === 0 || !this.isIdle()) return;
    const waiters = this.waiters;
    this.waiters = [];
    this.waiting = 0;
    for (const waiter of waiters) waiter();
  }
}
