/**
 * Event-emitter-style names for the Nest face: with
 * `EventsModule.forRoot({ delimiter: '.' })`, `'orders.created'`,
 * `'orders.*'` and `'*.created'` map onto herald's `(source, event)` in
 * `@OnEvent`, `register`, `post` and `postLocal`; and, with or without a
 * delimiter, a pattern that can never match is refused, naming where it was
 * written, instead of waiting silently for ever.
 */
import { InvalidEventError, InvalidOptionsError } from './common/errors.js';

/** One `register(handler, source?, ...events)` worth of patterns. */
export interface PatternArgs {
  readonly source?: string;
  readonly events: readonly string[];
}

const ANY = '*';

/** A name with `*` inside it (`'order*'`): a glob herald does not have, which would only match itself. */
function isPartialGlob(name: string): boolean {
  return name !== ANY && name !== '**' && name.includes(ANY);
}

function neverMatches(where: string, why: string): never {
  throw new InvalidOptionsError(`${where}: this pattern can never match: ${why}`);
}

/** Splits a dotted name at its first delimiter. */
function splitName(name: string, delimiter: string): [string, string] {
  const at = name.indexOf(delimiter);
  return [name.slice(0, at), name.slice(at + delimiter.length)];
}

/**
 * The patterns `(source?, ...events)` means, as written in `where`
 * (`@OnEvent on Class.method`, `register(handler)`), given the module's
 * `delimiter`. Throws `InvalidOptionsError` naming `where` when a pattern
 * can never match:
 * - a name with `*` inside it (`'order*'`, `'order.*.x'`): `*` stands for a
 *   whole source or a whole event, never part of one;
 * - with no delimiter, a lone dotted source (`@OnEvent('order.created')`),
 *   which event-emitter users mean as source `order`, event `created`
 *   (write `@OnEvent('order', 'created')`, set `delimiter: '.'`, or, for a
 *   source really named so, `@OnEvent('order.created', '*')`);
 * - with a delimiter, dotted and plain names mixed in one call.
 */
export function resolvePatternArgs(
  where: string,
  source: string | undefined,
  events: readonly string[],
  delimiter?: string,
): PatternArgs[] {
  if (source === undefined || (source === '**' && events.length === 0)) return [{ events }];
  if (delimiter !== undefined && source.includes(delimiter)) {
    const names = [source, ...events];
    const plain = names.find(name => !name.includes(delimiter));
    if (plain !== undefined) {
      neverMatches(
        where,
        `'${plain}' has no '${delimiter}' while '${source}' has: with delimiter '${delimiter}' every name of one @OnEvent is 'source${delimiter}event'`,
      );
    }
    const bySource = new Map<string, string[]>();
    for (const name of names) {
      const [from, event] = splitName(name, delimiter);
      if (from === '' || event === '') {
        neverMatches(where, `'${name}' has an empty source or event`);
      }
      for (const part of [from, event]) {
        if (isPartialGlob(part)) {
          neverMatches(where, `'${name}': '*' stands for a whole source or event, not part of one`);
        }
      }
      const list = bySource.get(from === '**' ? ANY : from) ?? [];
      // 'orders.*' (or 'orders.**'): every event of orders, as `@OnEvent('orders')`.
      list.push(event === '**' ? ANY : event);
      bySource.set(from === '**' ? ANY : from, list);
    }
    return [...bySource].map(([from, list]) =>
      list.includes(ANY)
        ? { source: from === ANY ? undefined : from, events: [] }
        : { source: from, events: list },
    );
  }
  for (const name of [source, ...events]) {
    if (isPartialGlob(name)) {
      neverMatches(where, `'${name}': '*' stands for a whole source or event, not part of one`);
    }
  }
  if (delimiter === undefined && events.length === 0 && source.includes('.')) {
    const [from, event] = splitName(source, '.');
    neverMatches(
      where,
      `'${source}' is one source name here, not source '${from}' + event '${event}': ` +
        `write @OnEvent('${from}', '${event}'), or set EventsModule.forRoot({ delimiter: '.' }); ` +
        `for a source really named '${source}', @OnEvent('${source}', '*')`,
    );
  }
  return [{ source, events }];
}

/** `post('orders.created', data, options)` with a delimiter: the name split into source and event. */
export function splitPostName(name: string, delimiter: string): [string, string] {
  const [source, event] = splitName(name, delimiter);
  if (source === '' || event === '') {
    throw new InvalidEventError(`'${name}' must be 'source${delimiter}event'`);
  }
  return [source, event];
}
