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

/**
 * The counts of one (transport, source, event) set. The hot path bumps a
 * field; the observable counters read them at each collection, so a post
 * costs no SDK call for its counters.
 */
export interface EventSlot {
  readonly attributes: EventAttributes;
  posted: number;
  publishFailed: number;
  delivered: number;
  handled: number;
  failed: number;
  dropped: number;
}

function slotOf(attributes: EventAttributes): EventSlot {
  return {
    attributes,
    posted: 0,
    publishFailed: 0,
    delivered: 0,
    handled: 0,
    failed: 0,
    dropped: 0,
  };
}

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
  private readonly events = new Map<string, EventSlot>();
  /** Per transport, the slot of every set past the limit. */
  private readonly overflows = new Map<string, EventSlot>();
  private readonly handlers = new Map<string, HandlerAttributes>();
  private warned = false;

  constructor(private readonly limit: number) {}

  event(transport: string, source: string, event: string, logger: HeraldLogger): EventSlot {
    const key = `${transport}\u0000${source}\u0000${event}`;
    let slot = this.events.get(key);
    if (slot) return slot;
    if (this.events.size >= this.limit) {
      this.overflow(logger, 'source/event');
      slot = this.overflows.get(transport);
      if (!slot) {
        slot = slotOf({ transport, source: OVERFLOW, event: OVERFLOW });
        this.overflows.set(transport, slot);
      }
      return slot;
    }
    slot = slotOf({ transport, source, event });
    this.events.set(key, slot);
    return slot;
  }

  /** Every slot, the overflow ones included. */
  *slots(): IterableIterator<EventSlot> {
    yield* this.events.values();
    yield* this.overflows.values();
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
