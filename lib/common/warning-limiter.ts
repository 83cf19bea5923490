import { systemClock, type Clock } from './clock.js';
import type { HeraldLogger } from './logger.js';

interface Pending {
  /** When the last line for this cause was written. */
  loggedAt: number;
  /** Repeats since then, not yet written. */
  repeats: number;
  /** The newest message of those repeats. */
  last: string;
}

/**
 * One warning line per cause per interval, with the count of repeats folded
 * into the next line: a full queue or a failing ack repeated 40,000 times in a
 * minute writes a handful of lines, each still naming an event and the count.
 * Every repeated warning of the package goes through one of these.
 */
export class WarningLimiter {
  private readonly causes = new Map<string, Pending>();

  constructor(
    private readonly logger: HeraldLogger,
    private readonly intervalMs = 10_000,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Logs `message` at WARN unless `cause` was logged within the interval; then counts it. */
  warn(cause: string, message: string): void {
    this.write('warn', cause, message);
  }

  /** As {@link warn}, at ERROR. */
  error(cause: string, message: string): void {
    this.write('error', cause, message);
  }

  /** Writes what was held back (e.g. at close), so no repeat goes untold. */
  flush(): void {
    for (const [cause, pending] of this.causes) {
      if (pending.repeats > 0) this.logger.warn(`${pending.last} (${this.repeatsText(pending)})`);
      this.causes.delete(cause);
    }
  }

  private write(level: 'warn' | 'error', cause: string, message: string): void {
    const now = this.clock.now();
    const pending = this.causes.get(cause);
    if (pending && now - pending.loggedAt < this.intervalMs) {
      pending.repeats++;
      pending.last = message;
      return;
    }
    const suffix = pending && pending.repeats > 0 ? ` (${this.repeatsText(pending)})` : '';
    this.causes.set(cause, { loggedAt: now, repeats: 0, last: message });
    if (level === 'warn') this.logger.warn(`${message}${suffix}`);
    else this.logger.error(`${message}${suffix}`);
  }

  private repeatsText(pending: Pending): string {
    return `and ${pending.repeats} more like it since the last such line`;
  }
}
