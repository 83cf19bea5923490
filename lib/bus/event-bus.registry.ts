import type { EventHandler } from '../interfaces/envelope.interface.js';
import {
  booleanOption,
  optionsObject,
  positiveNumberOption,
} from '../common/options.validation.js';

const ANY = '*';
const NONE: readonly EventHandler[] = Object.freeze([]);
const NO_PATTERNS: readonly Pattern[] = Object.freeze([]);

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
 * Options of one handler, the last argument of `register(handler, source?,
 * ...events, options?)` and of `@OnEvent(...)`.
 * @publicApi
 */
export interface HandlerOptions {
  /** Run before the handlers registered earlier (event-emitter's `prependListener`). @default false */
  prepend?: boolean;
  /** This handler's `handlerTimeoutMs` (async handlers: not settled by then counts as failed). */
  timeoutMs?: number;
}

const HANDLER_OPTION_KEYS = [
  'prepend',
  'timeoutMs',
] as const satisfies readonly (keyof HandlerOptions)[];

/**
 * Checks a handler's options; throws `InvalidOptionsError` naming an unknown
 * key or a bad value (`scope` names where: `@OnEvent on Class.method`).
 */
export function resolveHandlerOptions(scope: string, options: unknown): HandlerOptions {
  const given = optionsObject<HandlerOptions>(
    scope,
    options as HandlerOptions | undefined,
    HANDLER_OPTION_KEYS,
  );
  const prepend = booleanOption(scope, 'prepend', given.prepend, false);
  const timeoutMs = positiveNumberOption(scope, 'timeoutMs', given.timeoutMs, undefined);
  return timeoutMs === undefined ? { prepend } : { prepend, timeoutMs };
}

/**
 * Splits `(...events, options?)`: a trailing plain object is the handler's
 * options; the rest are event names.
 */
export function splitHandlerArgs(args: readonly unknown[]): {
  events: string[];
  options?: unknown;
} {
  const last = args.length > 0 ? args[args.length - 1] : undefined;
  if (last !== null && typeof last === 'object' && !Array.isArray(last)) {
    return { events: args.slice(0, -1) as string[], options: last };
  }
  return { events: args as string[] };
}

/**
 * The handlers of one index slot, in registration order. Copied on write,
 * so a dispatch iterating it is never disturbed by a register/unregister.
 */
type Slot = readonly EventHandler[];

/**
 * A handler's sequence number and patterns. Nearly every handler has one
 * pattern, kept inline (`source`, `event`); more go to `more`. One object
 * per handler keeps 10,000 registrations within event-emitter's memory.
 */
interface Registration {
  /** Order of first registration (negative when prepended); kept while the handler has any pattern. */
  readonly seq: number;
  /** The handler's own timeout, from its options. */
  readonly timeoutMs?: number;
  source: string;
  event: string;
  more?: readonly Pattern[];
}

function patternsIn(registration: Registration): Pattern[] {
  const first = { source: registration.source, event: registration.event };
  return registration.more ? [first, ...registration.more] : [first];
}

/**
 * `list` plus `item`, in an array of exactly that size: spread and push
 * reserve room for 16 more, which on 10,000 handlers is most of the
 * registry's memory.
 */
function appended<T>(list: readonly T[], item: T): T[] {
  return list.length === 0 ? [item] : list.concat([item]);
}

function listOf(slot: Slot | EventHandler | undefined): Slot | undefined {
  return typeof slot === 'function' ? [slot] : slot;
}

function same(a: Pattern, b: Pattern): boolean {
  return a.source === b.source && a.event === b.event;
}

/**
 * Who handles what, indexed four ways (as lua-resty-events and
 * EventEmitter2 look handlers up, instead of scanning): exact
 * `(source, event)`, every event of a source (`source, '*'`), an event of
 * any source (`'*', event`), and every event (`'*', '*'`). A lookup reads at
 * most four slots and, when several hold handlers, merges them by
 * registration sequence number; nothing is cached, so nothing is ever
 * cleared whole. A handler registered under several patterns matching one
 * event is listed once, in the order it was first registered.
 */
export class HandlerRegistry {
  private seq = 0;
  /** Sequence numbers of prepended handlers count down from -1: each runs before all earlier ones. */
  private prepended = 0;
  private readonly registrations = new Map<EventHandler, Registration>();
  /** source -> event -> slot; two levels so a lookup builds no string. */
  private readonly exact = new Map<string, Map<string, Slot | EventHandler>>();
  private readonly bySource = new Map<string, Slot>();
  private readonly byEvent = new Map<string, Slot>();
  private all: Slot = NONE;

  /** Options apply when the handler is first registered (its place and timeout stay). */
  add(handler: EventHandler, patterns: readonly Pattern[], options?: HandlerOptions): void {
    for (const pattern of patterns) {
      let registration = this.registrations.get(handler);
      if (!registration) {
        registration = {
          seq: options?.prepend ? --this.prepended : this.seq++,
          source: pattern.source,
          event: pattern.event,
          ...(options?.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        };
        this.registrations.set(handler, registration);
      } else {
        if (patternsIn(registration).some(known => same(known, pattern))) continue;
        registration.more = appended(registration.more ?? NO_PATTERNS, pattern);
      }
      this.write(pattern, this.inserted(this.read(pattern), handler, registration.seq));
    }
  }

  /** Removes the patterns (all of the handler's when undefined); true if any was removed. */
  remove(handler: EventHandler, patterns?: readonly Pattern[]): boolean {
    const registration = this.registrations.get(handler);
    if (!registration) return false;
    const known = patternsIn(registration);
    const removing = patterns ? known.filter(k => patterns.some(p => same(k, p))) : known;
    if (removing.length === 0) return false;
    const left = known.filter(k => !removing.includes(k));
    for (const pattern of removing) {
      this.write(
        pattern,
        this.read(pattern).filter(h => h !== handler),
      );
    }
    if (left.length === 0) {
      this.registrations.delete(handler);
    } else {
      registration.source = left[0].source;
      registration.event = left[0].event;
      registration.more = left.length > 1 ? left.slice(1) : undefined;
    }
    return true;
  }

  /** The handlers of one event, in registration order, each once. */
  match(source: string, event: string): readonly EventHandler[] {
    const a = listOf(this.exact.get(source)?.get(event));
    // Most apps use only exact patterns: an empty index costs no hashing.
    const b = this.bySource.size === 0 ? undefined : this.bySource.get(source);
    const c = this.byEvent.size === 0 ? undefined : this.byEvent.get(event);
    const d = this.all.length > 0 ? this.all : undefined;
    // The common case, one slot: its own array (one exact handler: a one-element one).
    const found = (a ? 1 : 0) + (b ? 1 : 0) + (c ? 1 : 0) + (d ? 1 : 0);
    if (found === 0) return NONE;
    if (found === 1) return (a ?? b ?? c ?? d)!;
    return this.merge([a, b, c, d].filter((slot): slot is Slot => slot !== undefined));
  }

  /** The handler's own `timeoutMs`, if it was registered with one. */
  timeoutOf(handler: EventHandler): number | undefined {
    return this.registrations.get(handler)?.timeoutMs;
  }

  get size(): number {
    return this.registrations.size;
  }

  clear(): void {
    this.registrations.clear();
    this.exact.clear();
    this.bySource.clear();
    this.byEvent.clear();
    this.all = NONE;
  }

  private seqOf(handler: EventHandler): number {
    return this.registrations.get(handler)!.seq;
  }

  /** The slot with `handler` in its place by sequence (usually appended: the newest). */
  private inserted(slot: Slot, handler: EventHandler, seq: number): Slot {
    let at = slot.length;
    while (at > 0 && this.seqOf(slot[at - 1]) > seq) at--;
    return at === slot.length
      ? appended(slot, handler)
      : slot.slice(0, at).concat([handler], slot.slice(at));
  }

  private read({ source, event }: Pattern): Slot {
    if (source === ANY && event === ANY) return this.all;
    if (source === ANY) return this.byEvent.get(event) ?? NONE;
    if (event === ANY) return this.bySource.get(source) ?? NONE;
    return listOf(this.exact.get(source)?.get(event)) ?? NONE;
  }

  /** Stores a slot; an empty one is removed, so the index holds only what is registered. */
  private write({ source, event }: Pattern, slot: Slot): void {
    const empty = slot.length === 0;
    if (source === ANY && event === ANY) {
      this.all = empty ? NONE : slot;
    } else if (source === ANY) {
      if (empty) this.byEvent.delete(event);
      else this.byEvent.set(event, slot);
    } else if (event === ANY) {
      if (empty) this.bySource.delete(source);
      else this.bySource.set(source, slot);
    } else {
      let events = this.exact.get(source);
      if (empty) {
        events?.delete(event);
        if (events?.size === 0) this.exact.delete(source);
        return;
      }
      if (!events) {
        events = new Map();
        this.exact.set(source, events);
      }
      // A lone exact handler is stored as itself: 10,000 one-element arrays are most of an app's registry.
      events.set(event, slot.length === 1 ? slot[0] : slot);
    }
  }

  /** Merges slots by sequence number; a handler in several slots appears once. */
  private merge(slots: readonly Slot[]): EventHandler[] {
    const out: EventHandler[] = [];
    const at = slots.map(() => 0);
    let last = -1;
    for (;;) {
      let pick = -1;
      let lowest = Infinity;
      for (let i = 0; i < slots.length; i++) {
        const handler = slots[i][at[i]];
        if (handler === undefined) continue;
        const seq = this.seqOf(handler);
        if (seq < lowest) {
          lowest = seq;
          pick = i;
        }
      }
      if (pick < 0) return out;
      if (lowest !== last) out.push(slots[pick][at[pick]]);
      last = lowest;
      at[pick]++;
    }
  }
}
