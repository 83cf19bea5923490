import type { EventHandler } from '../interfaces/envelope.interface.js';

const ANY = '*';
const NONE: readonly EventHandler[] = Object.freeze([]);

/** One `(source, event)` a handler listens to; `'*'` in either place matches any. */
export interface Pattern {
  readonly source: string;
  readonly event: string;
}

/** The patterns a `register(handler, source?, ...events)` call means. */
export function patternsOf(source?: string, events: readonly string[] = []): Pattern[] {
  if (source !== undefined && (typeof source !== 'string' || source === '')) {
    throw new TypeError('source must be a non-empty string when given');
  }
  for (const event of events) {
    if (typeof event !== 'string' || event === '') {
      throw new TypeError('events must be non-empty strings');
    }
  }
  const from = source ?? ANY;
  return events.length === 0
    ? [{ source: from, event: ANY }]
    : events.map(event => ({ source: from, event }));
}

/**
 * The handlers of one index slot, kept in registration order: `seqs[i]` is
 * the sequence number of `handlers[i]`. Copied on write, so a dispatch
 * iterating `handlers` is never disturbed by a register/unregister.
 */
interface Slot {
  handlers: EventHandler[];
  seqs: number[];
}

interface Registration {
  /** Order of first registration; kept while the handler has any pattern. */
  readonly seq: number;
  /** `source\0event` of each pattern, for removal. */
  readonly patterns: Map<string, Pattern>;
}

function keyOf(pattern: Pattern): string {
  return `${pattern.source}\u0000${pattern.event}`;
}

/**
 * Who handles what, indexed four ways (as lua-resty-events and
 * EventEmitter2 look handlers up, instead of scanning): exact
 * `(source, event)`, every event of a source (`source, '*'`), an event of
 * any source (`'*', event`), and every event (`'*', '*'`). A lookup reads at
 * most four slots and merges them by registration sequence number; nothing
 * is cached, so nothing is ever cleared whole. A handler registered under
 * several patterns matching one event is listed once, in the order it was
 * first registered.
 */
export class HandlerRegistry {
  private seq = 0;
  private readonly registrations = new Map<EventHandler, Registration>();
  /** source -> event -> slot; two levels so a lookup builds no string. */
  private readonly exact = new Map<string, Map<string, Slot>>();
  private readonly bySource = new Map<string, Slot>();
  private readonly byEvent = new Map<string, Slot>();
  private all?: Slot;

  add(handler: EventHandler, patterns: readonly Pattern[]): void {
    let registration = this.registrations.get(handler);
    if (!registration) {
      registration = { seq: this.seq++, patterns: new Map() };
      this.registrations.set(handler, registration);
    }
    for (const pattern of patterns) {
      const key = keyOf(pattern);
      if (registration.patterns.has(key)) continue;
      registration.patterns.set(key, pattern);
      this.insert(pattern, handler, registration.seq);
    }
  }

  /** Removes the patterns (all of the handler's when undefined); true if any was removed. */
  remove(handler: EventHandler, patterns?: readonly Pattern[]): boolean {
    const registration = this.registrations.get(handler);
    if (!registration) return false;
    let removed = false;
    for (const pattern of patterns ?? [...registration.patterns.values()]) {
      if (!registration.patterns.delete(keyOf(pattern))) continue;
      removed = true;
      this.extract(pattern, handler);
    }
    if (registration.patterns.size === 0) this.registrations.delete(handler);
    return removed;
  }

  /** The handlers of one event, in registration order, each once. */
  match(source: string, event: string): readonly EventHandler[] {
    const a = this.exact.get(source)?.get(event);
    const b = this.bySource.get(source);
    const c = this.byEvent.get(event);
    const d = this.all;
    // The common case, one slot: its own array, nothing built.
    const found = (a ? 1 : 0) + (b ? 1 : 0) + (c ? 1 : 0) + (d ? 1 : 0);
    if (found === 0) return NONE;
    if (found === 1) return (a ?? b ?? c ?? d)!.handlers;
    return merge([a, b, c, d].filter((slot): slot is Slot => slot !== undefined));
  }

  get size(): number {
    return this.registrations.size;
  }

  clear(): void {
    this.registrations.clear();
    this.exact.clear();
    this.bySource.clear();
    this.byEvent.clear();
    this.all = undefined;
  }

  private slotOf(pattern: Pattern, create: boolean): Slot | undefined {
    const { source, event } = pattern;
    const fresh = (): Slot => ({ handlers: [], seqs: [] });
    if (source === ANY && event === ANY) {
      if (!this.all && create) this.all = fresh();
      return this.all;
    }
    let map: Map<string, Slot>;
    let key: string;
    if (source === ANY) {
      map = this.byEvent;
      key = event;
    } else if (event === ANY) {
      map = this.bySource;
      key = source;
    } else {
      let events = this.exact.get(source);
      if (!events) {
        if (!create) return undefined;
        events = new Map();
        this.exact.set(source, events);
      }
      map = events;
      key = event;
    }
    let slot = map.get(key);
    if (!slot && create) {
      slot = fresh();
      map.set(key, slot);
    }
    return slot;
  }

  private insert(pattern: Pattern, handler: EventHandler, seq: number): void {
    const slot = this.slotOf(pattern, true)!;
    // Usually the newest handler: appended. An older one gaining a pattern goes in its place.
    let at = slot.seqs.length;
    while (at > 0 && slot.seqs[at - 1] > seq) at--;
    slot.handlers = [...slot.handlers.slice(0, at), handler, ...slot.handlers.slice(at)];
    slot.seqs = [...slot.seqs.slice(0, at), seq, ...slot.seqs.slice(at)];
  }

  private extract(pattern: Pattern, handler: EventHandler): void {
    const slot = this.slotOf(pattern, false);
    if (!slot) return;
    const at = slot.handlers.indexOf(handler);
    if (at < 0) return;
    slot.handlers = slot.handlers.filter((_, i) => i !== at);
    slot.seqs = slot.seqs.filter((_, i) => i !== at);
    if (slot.handlers.length > 0) return;
    // An empty slot is removed, so the index holds only what is registered.
    const { source, event } = pattern;
    if (source === ANY && event === ANY) this.all = undefined;
    else if (source === ANY) this.byEvent.delete(event);
    else if (event === ANY) this.bySource.delete(source);
    else {
      const events = this.exact.get(source)!;
      events.delete(event);
      if (events.size === 0) this.exact.delete(source);
    }
  }
}

/** Merges slots by sequence number; a handler in several slots appears once. */
function merge(slots: readonly Slot[]): EventHandler[] {
  const out: EventHandler[] = [];
  const at = slots.map(() => 0);
  let last = -1;
  for (;;) {
    let pick = -1;
    let lowest = Infinity;
    for (let i = 0; i < slots.length; i++) {
      const seq = slots[i].seqs[at[i]];
      if (seq !== undefined && seq < lowest) {
        lowest = seq;
        pick = i;
      }
    }
    if (pick < 0) return out;
    if (lowest !== last) out.push(slots[pick].handlers[at[pick]]);
    last = lowest;
    at[pick]++;
  }
}
