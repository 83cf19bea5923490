/**
 * A pause that something else can cut short: the drainer's back-off ends
 * early when the connection comes back or `close()` begins; the read loop's
 * back-off ends when the subscriber closes.
 */
export class Sleeper {
  private wake?: () => void;
  private timer?: NodeJS.Timeout;

  /** Resolves after `ms`, or at once when {@link interrupt} is called. */
  sleep(ms: number): Promise<void> {
    this.interrupt();
    return new Promise(resolve => {
      this.wake = resolve;
      this.timer = setTimeout(() => this.interrupt(), Math.max(0, ms));
    });
  }

  interrupt(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
