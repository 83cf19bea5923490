import type { EventHandler } from '../interfaces/envelope.interface.js';

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
  /** source -> event -> handlers; two levels so a lookup builds no string. */
  private readonly cache = new Map<string, Map<string, EventHandler[]>>();
  private cached = 0;

  add(handler: EventHandler, patterns: readonly string[]): void {
    let registration = this.registrations.get(handler);
    if (!registration) {
      registration = { handler, patterns: new Set() };
      this.registrations.set(handler, registration);
    }
    for (const pattern of patterns) registration.patterns.add(pattern);
    this.clearCache();
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
    if (removed) this.clearCache();
    return removed;
  }

  /** The handlers of one event, in registration order, each once. */
  match(source: string, event: string): readonly EventHandler[] {
    let events = this.cache.get(source);
    let handlers = events?.get(event);
    if (handlers) return handlers;
    const exact = source + SEP + event;
    const ofSource = source + SEP + ANY;
    const ofEvent = ANY + SEP + event;
    const all = ANY + SEP + ANY;
    handlers = [];
    for (const { handler, patterns } of this.registrations.values()) {
      if (
        patterns.has(exact) ||
        patterns.has(ofSource) ||
        patterns.has(ofEvent) ||
        patterns.has(all)
      ) {
        handlers.push(handler);
      }
    }
    if (this.cached >= 10_000) this.clearCache();
    if (!events) {
      events = new Map();
      this.cache.set(source, events);
    }
    events.set(event, handlers);
    this.cached++;
    return handlers;
  }

  private clearCache(): void {
    this.cache.clear();
    this.cached = 0;
  }

  get size(): number {
    return this.registrations.size;
  }

  clear(): void {
    this.registrations.clear();
    this.clearCache();
  }
}
