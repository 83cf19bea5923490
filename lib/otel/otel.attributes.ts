import { logLine } from '../common/log-line.js';
import type { HeraldLogger } from '../common/logger.js';

/** The value a capped attribute takes once the limit is reached. */
export const OVERFLOW = '_other';

/** Metric attributes of one event kind: built once, reused for every record. */
export type EventAttributes = {
  readonly transport: string;
  readonly source: string;
  readonly event: string;
};

/** Metric attributes of one handler. */
export type HandlerAttributes = {
  readonly transport: string;
  readonly handler: string;
};

/**
 * The guard against unbounded attribute cardinality: at most `limit`
 * distinct (transport, source, event) sets and as many handler sets per
 * process; past it, new ones are recorded as `_other` (one WARN line says
 * so). Sources and events are names from code, usually a few dozen; an app
 * that builds them from data would otherwise grow every metric without end.
 * The sets are cached, so recording allocates nothing.
 */
export class AttributeGuard {
  private readonly events = new Map<string, EventAttributes>();
  private readonly handlers = new Map<string, HandlerAttributes>();
  private warned = false;

  constructor(private readonly limit: number) {}

  event(transport: string, source: string, event: string, logger: HeraldLogger): EventAttributes {
    const key = `${transport}\u0000${source}\u0000${event}`;
    let set = this.events.get(key);
    if (set) return set;
    if (this.events.size >= this.limit) {
      this.overflow(logger, 'source/event');
      set = { transport, source: OVERFLOW, event: OVERFLOW };
      return set;
    }
    set = { transport, source, event };
    this.events.set(key, set);
    return set;
  }

  handler(transport: string, handler: string, logger: HeraldLogger): HandlerAttributes {
    const key = `${transport}\u0000${handler}`;
    let set = this.handlers.get(key);
    if (set) return set;
    if (this.handlers.size >= this.limit) {
      this.overflow(logger, 'handler');
      return { transport, handler: OVERFLOW };
    }
    set = { transport, handler };
    this.handlers.set(key, set);
    return set;
  }

  private overflow(logger: HeraldLogger, what: string): void {
    if (this.warned) return;
    this.warned = true;
    logger.warn(
      logLine(
        'otel',
        'otel-attribute-limit',
        `more than ${this.limit} distinct ${what} attribute sets; further ones are recorded as ${OVERFLOW}`,
        { limit: this.limit },
      ),
    );
  }
}
