import type { EventHandler } from './envelope.interface.js';

const ANY = '*';
const SEP = '\u0000';

interface Registration {
  readonly handler: EventHandler;
  readonly patterns: Set<string>;
}

/** The patterns a `register(handler, source?, ...events)` call means. */
export function patternsOf(source?: string, events: readonly string[] = []): string[] {
  if (source !== undefined && (typeof source !== 'string' || source === '')) {
    throw new TypeError('source must be a non-empty string when given');
  }
  for (const event of events) {
    if (typeof event !== 'string' || event === '') {
      throw new TypeError('events must be non-empty strings');
    }
  }
  const from = source ?? ANY;
  return events.length === 0 ? [from + SEP + ANY] : events.map(event => from + SEP + event);
}

/**
 * Who handles what. Matching levels: every event (`'*'`,`'*'`), every event
 * of a source, named events of a source, and named events of any source
 * (`'*'` + events). A handler registered under several patterns is listed
 * once per event, in the order it was first registered.
 */
export class HandlerRegistry {
  private readonly registrations = new Map<EventHandler, Registration>();
  private readonly cache = new Map<string, EventHandler[]>();

  add(handler: EventHandler, patterns: readonly string[]): void {
    let registration = this.registrations.get(handler);
    if (!registration) {
      registration = { handler, patterns: new Set() };
      this.registrations.set(handler, registration);
    }
    for (const pattern of patterns) registration.patterns.add(pattern);
    this.cache.clear();
  }

  /** Removes the patterns (all of the handler's when undefined); true if any was removed. */
  remove(handler: EventHandler, patterns?: readonly string[]): boolean {
    const registration = this.registrations.get(handler);
    if (!registration) return false;
    let removed = false;
    if (patterns === undefined) {
      removed = true;
      registration.patterns.clear();
    } else {
      for (const pattern of patterns) removed = registration.patterns.delete(pattern) || removed;
    }
    if (registration.patterns.size === 0) this.registrations.delete(handler);
    if (removed) this.cache.clear();
    return removed;
  }

  /** The handlers of one event, in registration order, each once. */
  match(source: string, event: string): readonly EventHandler[] {
    const key = source + SEP + event;
    let handlers = this.cache.get(key);
    if (handlers) return handlers;
    const exact = key;
    const ofSource = source + SEP + ANY;
    const ofEvent = ANY + SEP + event;
    const all = ANY + SEP + ANY;
    handlers = [];
    for (const { handler, patterns } of this.registrations.values()) {
      if (patterns.has(exact) || patterns.has(ofSource) || patterns.has(ofEvent) || patterns.has(all)) {
        handlers.push(handler);
      }
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, handlers);
    return handlers;
  }

  get size(): number {
    return this.registrations.size;
  }

  clear(): void {
    this.registrations.clear();
    this.cache.clear();
  }
}
