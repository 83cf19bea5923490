/**
 * Waiters for "nothing left to do": the bus's parts call {@link notify}
 * whenever work ends, and each waiter resolves once `isIdle()` holds — or
 * with false when its timeout fires first, so no wait lasts for ever.
 */
export class IdleWaiters {
  private waiters: (() => void)[] = [];

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
          resolve(false);
        }, timeoutMs);
      }
      this.waiters.push(done);
    });
  }

  /** Work ended somewhere: resolve the waiters if nothing is left. */
  notify(): void {
    if (this.waiters.length === 0 || !this.isIdle()) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
