import {
  HandlerRegistry,
  entriesOf,
  nameOfEntry,
  patternsOf,
  type Found,
} from '../../../lib/bus/event-bus.registry.js';
import type { EventHandler } from '../../../lib/index.js';

function handler(name: string): EventHandler {
  return { [name]: () => name }[name];
}
const names = (found: Found): string[] => entriesOf(found).map(e => e.handler.name);

describe('HandlerRegistry', () => {
  it('indexes only names that can be posted: an entry with an empty name is refused, nothing registered', () => {
    const registry = new HandlerRegistry();
    for (const pattern of [
      { source: '', event: 'x' },
      { source: 's', event: '' },
      { source: 1 as unknown as string, event: 'x' },
    ]) {
      expect(() => registry.addEntry({ handler: handler('bad') }, [pattern])).toThrow(TypeError);
    }
    expect(registry.size).toBe(0);
    expect(registry.exact.size).toBe(0);
    // The exact index a post reads inline: source -> event -> the entry itself.
    const entry = registry.addEntry({ handler: handler('ok') }, [{ source: 's', event: 'x' }]);
    expect(registry.exact.get('s')?.get('x')).toBe(entry);
    expect(registry.wild).toBe(0);
    registry.add(handler('any'), patternsOf('*', ['x']));
    expect(registry.wild).toBe(1);
  });

  it('matches exact, by source, by event of any source, and every event', () => {
    const registry = new HandlerRegistry();
    registry.add(handler('exact'), patternsOf('orders', ['created']));
    registry.add(handler('source'), patternsOf('orders'));
    registry.add(handler('event'), patternsOf('*', ['created']));
    registry.add(handler('all'), patternsOf());
    expect(names(registry.match('orders', 'created'))).toEqual(['exact', 'source', 'event', 'all']);
    expect(names(registry.match('orders', 'paid'))).toEqual(['source', 'all']);
    expect(names(registry.match('users', 'created'))).toEqual(['event', 'all']);
    expect(names(registry.match('users', 'deleted'))).toEqual(['all']);
  });

  it('matches wildcard patterns while any is registered, and exact ones alone again once all are removed', () => {
    const registry = new HandlerRegistry();
    const exact = handler('exact');
    registry.add(exact, patternsOf('orders', ['created']));
    expect(registry.match('orders', 'created')).toMatchObject({ handler: exact });
    for (const [wild, patterns] of [
      [handler('source'), patternsOf('orders')],
      [handler('event'), patternsOf('*', ['created'])],
      [handler('all'), patternsOf()],
    ] as const) {
      registry.add(wild, patterns);
      expect(names(registry.match('orders', 'created'))).toEqual(['exact', wild.name]);
      expect(names(registry.match('orders', 'paid'))).toEqual(
        wild.name === 'event' ? [] : [wild.name],
      );
      registry.remove(wild);
      // Only exact patterns left: the lone entry is found as itself.
      expect(registry.match('orders', 'created')).toMatchObject({ handler: exact });
      expect(names(registry.match('orders', 'paid'))).toEqual([]);
    }
    registry.add(handler('all'), patternsOf());
    registry.clear();
    registry.add(exact, patternsOf('orders', ['created']));
    expect(registry.match('users', 'x')).toEqual([]);
    expect(registry.match('orders', 'created')).toMatchObject({ handler: exact });
  });

  it('keeps registration order across slots, and lists a handler under several matching patterns once', () => {
    const registry = new HandlerRegistry();
    const first = handler('first');
    registry.add(handler('catchAll'), patternsOf());
    registry.add(first, patternsOf('orders', ['created']));
    registry.add(handler('bySource'), patternsOf('orders'));
    // An older handler gaining a pattern keeps its place.
    registry.add(first, patternsOf('orders'));
    registry.add(first, patternsOf('*', ['created']));
    expect(names(registry.match('orders', 'created'))).toEqual(['catchAll', 'first', 'bySource']);
    expect(names(registry.match('orders', 'paid'))).toEqual(['catchAll', 'first', 'bySource']);
    expect(registry.size).toBe(3);
  });

  it('sees a registration made after a lookup (the remembered last lookup is forgotten)', () => {
    const registry = new HandlerRegistry();
    expect(registry.match('a', 'b')).toEqual([]);
    registry.add(handler('late'), patternsOf('a', ['b']));
    expect(names(registry.match('a', 'b'))).toEqual(['late']);
  });

  it('forgets the last lookup at every change: same names again see each add, remove and clear', () => {
    const registry = new HandlerRegistry();
    const first = handler('first');
    registry.add(first, patternsOf('a', ['b']));
    expect(names(registry.match('a', 'b'))).toEqual(['first']);
    // The very strings of the last lookup, as a decoder hands them on.
    registry.add(handler('any'), patternsOf('*', ['b']));
    expect(names(registry.match('a', 'b'))).toEqual(['first', 'any']);
    registry.remove(first);
    expect(names(registry.match('a', 'b'))).toEqual(['any']);
    const entry = registry.addEntry({ handler: handler('entry') }, [{ source: 'a', event: 'b' }]);
    expect(names(registry.match('a', 'b'))).toEqual(['any', 'entry']);
    registry.removeEntry(entry);
    expect(names(registry.match('a', 'b'))).toEqual(['any']);
    // Another event between two of the same: each answered for its own names.
    expect(names(registry.match('a', 'c'))).toEqual([]);
    expect(names(registry.match('a', 'b'))).toEqual(['any']);
    registry.clear();
    expect(names(registry.match('a', 'b'))).toEqual([]);
  });

  it('removes chosen patterns or all of them, and a re-registered handler goes last', () => {
    const registry = new HandlerRegistry();
    const a = handler('a');
    registry.add(a, patternsOf('s', ['x', 'y']));
    registry.add(handler('b'), patternsOf('s', ['x']));
    expect(registry.remove(a, patternsOf('s', ['y']))).toBe(true);
    expect(registry.remove(a, patternsOf('s', ['y']))).toBe(false);
    expect(names(registry.match('s', 'y'))).toEqual([]);
    expect(registry.remove(a)).toBe(true);
    expect(registry.remove(a)).toBe(false);
    registry.add(a, patternsOf('s', ['x']));
    expect(names(registry.match('s', 'x'))).toEqual(['b', 'a']);
    registry.clear();
    expect(registry.size).toBe(0);
    expect(registry.match('s', 'x')).toEqual([]);
  });

  it('hands out arrays a later register/unregister never changes (dispatch may be iterating one)', () => {
    const registry = new HandlerRegistry();
    const a = handler('a');
    registry.add(a, patternsOf('s', ['e']));
    const during = registry.match('s', 'e');
    registry.add(handler('b'), patternsOf('s', ['e']));
    registry.remove(a);
    expect(names(during)).toEqual(['a']);
    expect(names(registry.match('s', 'e'))).toEqual(['b']);
  });

  it('looks 10,000 distinct events up without scanning', () => {
    const registry = new HandlerRegistry();
    for (let i = 0; i < 10_000; i++)
      registry.add(handler(`h${i}`), patternsOf(`p${i % 1000}`, [`e${i}`]));
    expect(names(registry.match('p7', 'e9007'))).toEqual(['h9007']);
    expect(registry.match('p7', 'e9008')).toEqual([]);
  });

  it('keeps entries registered as a method and its instance: named Class.method, removed by entry, counted', () => {
    const registry = new HandlerRegistry();
    class Billing {
      charged = 0;
      charge(): void {
        this.charged++;
      }
    }
    const billing = new Billing();
    const entry = registry.addEntry(
      { handler: Billing.prototype.charge as EventHandler, receiver: billing, key: 'charge' },
      [
        ...patternsOf('orders', ['paid']),
        ...patternsOf('orders', ['paid']),
        ...patternsOf('*', ['paid']),
      ],
    );
    registry.add(handler('other'), patternsOf('orders', ['paid']));
    expect(registry.size).toBe(2);
    const found = entriesOf(registry.match('orders', 'paid'));
    expect(found.map(nameOfEntry)).toEqual(['Billing.charge', 'other']);
    found[0].handler.call(found[0].receiver, undefined, undefined as never);
    expect(billing.charged).toBe(1);
    // Not found by its function (another instance of the class may share it).
    expect(registry.remove(Billing.prototype.charge as EventHandler)).toBe(false);
    expect(registry.removeEntry(entry)).toBe(true);
    expect(registry.removeEntry(entry)).toBe(false);
    expect(names(registry.match('orders', 'paid'))).toEqual(['other']);
    expect(registry.size).toBe(1);
  });

  it('refuses bad patterns', () => {
    expect(() => patternsOf('')).toThrow(TypeError);
    expect(() => patternsOf('s', [''])).toThrow(
      'events must be non-empty strings (got "", a string)',
    );
    // Each refusal names the value it refused.
    expect(() => patternsOf(7 as never)).toThrow(
      'source must be a non-empty string when given (got 7, a number)',
    );
    expect(() => patternsOf('s', [['a'] as never])).toThrow('(got an array of 1)');
  });
});
