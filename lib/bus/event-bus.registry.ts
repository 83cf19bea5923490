import type { EventHandler } from '../interfaces/envelope.interface.js';
import {
  booleanOption,
  describeValue,
  optionsObject,
  positiveNumberOption,
} from '../common/options.validation.js';

const ANY = '*';
const NONE: readonly HandlerEntry[] = Object.freeze([]);
/** The source of an entry with no pattern left (never a valid source). */
const REMOVED = '';
const NO_PATTERNS: readonly Pattern[] = Object.freeze([]);

/** One `(source, event)` a handler listens to; `'*'` in either place matches any. */
export interface Pattern {
  readonly source: string;
  readonly event: string;
}

/** The patterns a `register(handler, source?, ...events)` call means. */
export function patternsOf(source?: string, events: readonly string[] = []): Pattern[] {
  if (source !== undefined && (typeof source !== 'string' || source === '')) {
    throw new TypeError(
      `source must be a non-empty string when given (got ${describeValue(source)})`,
    );
  }
  for (const event of events) {
    if (typeof event !== 'string' || event === '') {
      throw new TypeError(`events must be non-empty strings (got ${describeValue(event)})`);
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
 * One registration: what to call, on what, its place, and its patterns.
 * Nearly every handler has one pattern, kept inline (`source`, `event`);
 * more go to `more`. The index holds these records themselves, so a
 * dispatch reads a handler's place, receiver and timeout without a lookup,
 * and an `@OnEvent` method is registered as the method and its instance
 * (no closure per handler: 10,000 handlers stay within event-emitter's
 * memory).
 */
export interface HandlerEntry {
  /** The function called with `(data, event)`. */
  readonly handler: EventHandler;
  /** `this` of the call (an `@OnEvent` method's instance), else undefined. */
  readonly receiver: object | undefined;
  /** The method's name when `receiver` is its instance: the log name is `Class.method`. */
  readonly key: string | undefined;
  /** The log name, once asked for ({@link nameOfEntry}). */
  name: string | undefined;
  /** Order of first registration (negative when prepended); kept while the handler has any pattern. */
  readonly seq: number;
  /** The handler's own timeout, from its options. */
  readonly timeoutMs: number | undefined;
  source: string;
  event: string;
  more: readonly Pattern[] | undefined;
}

/** What a lookup finds: nothing (an empty array), one entry, or several in order. */
export type Found = HandlerEntry | readonly HandlerEntry[];

/** The entries of a lookup as an array (tests and slow paths; dispatch reads {@link Found} as it is). */
export function entriesOf(found: Found): readonly HandlerEntry[] {
  return isEntry(found) ? [found] : found;
}

function isEntry(found: Found | undefined): found is HandlerEntry {
  return found !== undefined && (found as Partial<HandlerEntry>).seq !== undefined;
}

/** The handler's log name: `Class.method` for an `@OnEvent` method, else the function's name. */
export function nameOfEntry(entry: HandlerEntry): string {
  if (entry.name !== undefined) return entry.name;
  const { receiver, key } = entry;
  entry.name =
    receiver !== undefined && key !== undefined
      ? `${(receiver as { constructor?: { name?: string } }).constructor?.name ?? 'anonymous'}.${key}`
      : entry.handler.name || 'anonymous';
  return entry.name;
}

/** How a handler is called and named, for {@link HandlerRegistry.addEntry}. */
export interface HandlerTarget {
  readonly handler: EventHandler;
  readonly receiver?: object;
  readonly key?: string;
  /** The log name, when neither `key` nor the function's own name says it. */
  readonly name?: string;
}

/**
 * The entries of one index slot, in registration order; a lone exact entry
 * is stored as itself. Copied on write, so a dispatch iterating it is
 * never disturbed by a register/unregister.
 */
type Slot = Found;

function patternsIn(entry: HandlerEntry): Pattern[] {
  const first = { source: entry.source, event: entry.event };
  return entry.more ? [first, ...entry.more] : [first];
}

/**
 * `list` plus `item`, in an array of exactly that size: spread and push
 * reserve room for 16 more, which on 10,000 handlers is most of the
 * registry's memory.
 */
function appended<T>(list: readonly T[], item: T): T[] {
  return list.length === 0 ? [item] : list.concat([item]);
}

/**
 * `patternsOf` checks the public API's patterns; this holds for every
 * caller, before anything is registered, so that an index key is always a
 * name that can be posted (`EventBus.postLocal` relies on it).
 */
function assertIndexable(patterns: readonly Pattern[]): void {
  for (const { source, event } of patterns) {
    if (typeof source !== 'string' || source === '' || typeof event !== 'string' || event === '') {
      throw new TypeError("a pattern needs a non-empty source and event (or '*')");
    }
  }
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
 * registration sequence number; only the last lookup is remembered
 * (forgotten at every change), so nothing is ever cleared whole. A handler
 * registered under several patterns matching one event is listed once, in
 * the order it was first registered.
 */
export class HandlerRegistry {
  private seq = 0;
  /** Sequence numbers of prepended handlers count down from -1: each runs before all earlier ones. */
  private prepended = 0;
  /** Entries of `add(handler)` (found again by their function); `addEntry`'s are their caller's to keep. */
  private readonly byHandler = new Map<EventHandler, HandlerEntry>();
  /** How many `addEntry` entries hold a pattern. */
  private owned = 0;
  /**
   * source -> event -> slot; two levels so a lookup builds no string.
   * Read (never written) by `EventBus.postLocal`, which looks an event up
   * here inline while {@link wild} is 0 ({@link match}'s first case): a
   * lookup function on the path a cold app runs first is compiled alone
   * and again inside its caller. Its keys are only valid names (non-empty,
   * never `'*'`: see {@link insert}), so a hit proves both names valid.
   */
  readonly exact = new Map<string, Map<string, Slot>>();
  private readonly bySource = new Map<string, Slot>();
  private readonly byEvent = new Map<string, Slot>();
  private all: Slot = NONE;
  /** Slots of the three wildcard indexes holding handlers: 0 means every lookup is exact. Read by `EventBus.postLocal`; written here only. */
  wild = 0;
  /**
   * The last {@link match}: its names and what it found; forgotten by every
   * change of an index ({@link write}, {@link clear}), so never stale.
   * Empty names match no lookup (posted names are never empty).
   */
  private lastSource = '';
  private lastEvent = '';
  private lastFound: Found = NONE;

  /** Options apply when the handler is first registered (its place and timeout stay). */
  add(handler: EventHandler, patterns: readonly Pattern[], options?: HandlerOptions): void {
    if (patterns.length === 0) return;
    assertIndexable(patterns);
    const known = this.byHandler.get(handler);
    if (known) {
      for (const pattern of patterns) this.extend(known, pattern);
      return;
    }
    const entry = this.entry({ handler }, patterns[0], options);
    this.byHandler.set(handler, entry);
    this.insert(entry, patterns[0]);
    for (let i = 1; i < patterns.length; i++) this.extend(entry, patterns[i]);
  }

  /**
   * Registers a handler the caller keeps track of (an `@OnEvent` method as
   * the method and its instance); @returns its entry, for
   * {@link removeEntry}. Not found by `remove(handler)`.
   */
  addEntry(
    target: HandlerTarget,
    patterns: readonly Pattern[],
    options?: HandlerOptions,
  ): HandlerEntry {
    if (patterns.length === 0) throw new TypeError('addEntry needs a pattern');
    assertIndexable(patterns);
    const entry = this.entry(target, patterns[0], options);
    this.owned++;
    this.insert(entry, patterns[0]);
    for (let i = 1; i < patterns.length; i++) this.extend(entry, patterns[i]);
    return entry;
  }

  /** Removes the patterns (all of the handler's when undefined); true if any was removed. */
  remove(handler: EventHandler, patterns?: readonly Pattern[]): boolean {
    const entry = this.byHandler.get(handler);
    if (!entry) return false;
    const removed = this.removeFrom(entry, patterns);
    if (removed === 'all') this.byHandler.delete(handler);
    return removed !== 'none';
  }

  /** Removes an {@link addEntry} entry's patterns (all of them when undefined); true if any was removed. */
  removeEntry(entry: HandlerEntry, patterns?: readonly Pattern[]): boolean {
    if (this.byHandler.get(entry.handler) === entry) return this.remove(entry.handler, patterns);
    const removed = this.removeFrom(entry, patterns);
    if (removed === 'all') this.owned--;
    return removed !== 'none';
  }

  /**
   * The handlers of one event, in registration order, each once: one entry
   * as itself (the common case: no array), several as an array, none as an
   * empty one.
   */
  match(source: string, event: string): Found {
    // A run of deliveries is mostly one event: a transport's decoder hands
    // the same name strings on (redis's keeps them per run of entries), so
    // two pointer compares stand for two hash lookups.
    if (source === this.lastSource && event === this.lastEvent) return this.lastFound;
    // Most apps register exact patterns only: two hash lookups, in a
    // function small enough for V8 to inline into the dispatch.
    const found =
      this.wild === 0
        ? (this.exact.get(source)?.get(event) ?? NONE)
        : this.matchWild(source, event);
    this.lastSource = source;
    this.lastEvent = event;
    this.lastFound = found;
    return found;
  }

  /** {@link match} when some handler listens to a source's every event, an event of any source, or all. */
  private matchWild(source: string, event: string): Found {
    const a = this.exact.get(source)?.get(event);
    // Most apps use only exact patterns: an empty index costs no hashing.
    const b = this.bySource.size === 0 ? undefined : this.bySource.get(source);
    const c = this.byEvent.size === 0 ? undefined : this.byEvent.get(event);
    const d = this.all === NONE ? undefined : this.all;
    if (b === undefined && c === undefined && d === undefined) return a ?? NONE;
    const found = (a ? 1 : 0) + (b ? 1 : 0) + (c ? 1 : 0) + (d ? 1 : 0);
    if (found === 1) return (a ?? b ?? c ?? d)!;
    return this.merge([a, b, c, d].filter((slot): slot is Slot => slot !== undefined));
  }

  /** The handler's own `timeoutMs`, if it was registered with one. */
  timeoutOf(handler: EventHandler): number | undefined {
    return this.byHandler.get(handler)?.timeoutMs;
  }

  get size(): number {
    return this.byHandler.size + this.owned;
  }

  clear(): void {
    this.byHandler.clear();
    this.owned = 0;
    this.exact.clear();
    this.bySource.clear();
    this.byEvent.clear();
    this.all = NONE;
    this.wild = 0;
    this.forgetMatch();
  }

  private forgetMatch(): void {
    this.lastSource = '';
    this.lastEvent = '';
    this.lastFound = NONE;
  }

  private entry(target: HandlerTarget, first: Pattern, options?: HandlerOptions): HandlerEntry {
    // Every field written, in one order: one shape for every entry.
    return {
      handler: target.handler,
      receiver: target.receiver,
      key: target.key,
      name: target.name,
      seq: options?.prepend ? --this.prepended : this.seq++,
      timeoutMs: options?.timeoutMs,
      source: first.source,
      event: first.event,
      more: undefined,
    };
  }

  /** Adds a pattern to a known entry (nothing if it has it already): it keeps its place. */
  private extend(entry: HandlerEntry, pattern: Pattern): void {
    if (patternsIn(entry).some(known => same(known, pattern))) return;
    entry.more = appended(entry.more ?? NO_PATTERNS, pattern);
    this.insert(entry, pattern);
  }

  private insert(entry: HandlerEntry, pattern: Pattern): void {
    this.write(pattern, this.inserted(this.read(pattern), entry));
  }

  /** 'all' when the entry has no pattern left, 'some', or 'none' removed. */
  private removeFrom(
    entry: HandlerEntry,
    patterns: readonly Pattern[] | undefined,
  ): 'all' | 'some' | 'none' {
    if (entry.source === REMOVED) return 'none';
    const known = patternsIn(entry);
    const removing = patterns ? known.filter(k => patterns.some(p => same(k, p))) : known;
    if (removing.length === 0) return 'none';
    const left = known.filter(k => !removing.includes(k));
    for (const pattern of removing) {
      this.write(
        pattern,
        entriesOf(this.read(pattern)).filter(e => e !== entry),
      );
    }
    if (left.length === 0) {
      // Marked, so removing it again removes nothing (a dispatch holding it may still run it).
      entry.source = REMOVED;
      entry.more = undefined;
      return 'all';
    }
    entry.source = left[0].source;
    entry.event = left[0].event;
    entry.more = left.length > 1 ? left.slice(1) : undefined;
    return 'some';
  }

  /** The slot with `entry` in its place by sequence (usually appended: the newest). */
  private inserted(slot: Slot, entry: HandlerEntry): readonly HandlerEntry[] {
    const list = entriesOf(slot);
    let at = list.length;
    while (at > 0 && list[at - 1].seq > entry.seq) at--;
    return at === list.length
      ? appended(list, entry)
      : list.slice(0, at).concat([entry], list.slice(at));
  }

  private read({ source, event }: Pattern): Slot {
    if (source === ANY && event === ANY) return this.all;
    if (source === ANY) return this.byEvent.get(event) ?? NONE;
    if (event === ANY) return this.bySource.get(source) ?? NONE;
    return this.exact.get(source)?.get(event) ?? NONE;
  }

  /** Stores a slot; an empty one is removed, so the index holds only what is registered. */
  private write({ source, event }: Pattern, list: readonly HandlerEntry[]): void {
    this.forgetMatch();
    const empty = list.length === 0;
    if (source === ANY || event === ANY) {
      if (source === ANY && event === ANY) this.all = empty ? NONE : list;
      else if (source === ANY) {
        if (empty) this.byEvent.delete(event);
        else this.byEvent.set(event, list);
      } else if (empty) this.bySource.delete(source);
      else this.bySource.set(source, list);
      this.wild = this.bySource.size + this.byEvent.size + (this.all === NONE ? 0 : 1);
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
      // A lone exact entry is stored as itself: 10,000 one-element arrays are most of an app's registry.
      events.set(event, list.length === 1 ? list[0] : list);
    }
  }

  /** Merges slots by sequence number; an entry in several slots appears once. */
  private merge(slots: readonly Slot[]): HandlerEntry[] {
    const lists = slots.map(entriesOf);
    const out: HandlerEntry[] = [];
    const at = lists.map(() => 0);
    let last: HandlerEntry | undefined;
    for (;;) {
      let pick = -1;
      let lowest = Infinity;
      for (let i = 0; i < lists.length; i++) {
        const entry = lists[i][at[i]];
        if (entry === undefined) continue;
        if (entry.seq < lowest) {
          lowest = entry.seq;
          pick = i;
        }
      }
      if (pick < 0) return out;
      const entry = lists[pick][at[pick]];
      if (entry !== last) out.push(entry);
      last = entry;
      at[pick]++;
    }
  }
}
