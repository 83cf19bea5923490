import { InvalidOptionsError } from '../../lib/common/errors.js';
import { resolvePatternArgs, splitPostName } from '../../lib/event-names.js';

describe('resolvePatternArgs', () => {
  const at = (source: string | undefined, events: string[], delimiter?: string) =>
    resolvePatternArgs('@OnEvent on A.b', source, events, delimiter);

  it('leaves (source, events) alone without a delimiter', () => {
    expect(at('orders', ['created'])).toEqual([{ source: 'orders', events: ['created'] }]);
    expect(at(undefined, [])).toEqual([{ events: [] }]);
    expect(at('**', [])).toEqual([{ events: [] }]);
    expect(at('v1.orders', ['*'])).toEqual([{ source: 'v1.orders', events: ['*'] }]);
  });

  it('maps dotted names with a delimiter', () => {
    expect(at('orders.created', [], '.')).toEqual([{ source: 'orders', events: ['created'] }]);
    expect(at('orders.*', [], '.')).toEqual([{ source: 'orders', events: [] }]);
    expect(at('orders.**', [], '.')).toEqual([{ source: 'orders', events: [] }]);
    expect(at('*.created', [], '.')).toEqual([{ source: '*', events: ['created'] }]);
    expect(at('*.*', [], '.')).toEqual([{ source: undefined, events: [] }]);
    expect(at('a.x', ['a.y', 'b.z'], '.')).toEqual([
      { source: 'a', events: ['x', 'y'] },
      { source: 'b', events: ['z'] },
    ]);
    expect(at('a.b.c', [], '.')).toEqual([{ source: 'a', events: ['b.c'] }]);
  });

  it.each([
    ['order.created', [], undefined],
    ['order*', [], undefined],
    ['order', ['*ed'], undefined],
    ['order.*.x', [], '.'],
    ['order.x', ['y'], '.'],
    ['.x', [], '.'],
  ])('refuses %p %p (delimiter %p), naming where', (source, events, delimiter) => {
    expect(() => at(source, events, delimiter)).toThrow(InvalidOptionsError);
    expect(() => at(source, events, delimiter)).toThrow(
      /^@OnEvent on A\.b: this pattern can never match/,
    );
  });

  it('splits post names at the first delimiter', () => {
    expect(splitPostName('a.b.c', '.')).toEqual(['a', 'b.c']);
    expect(() => splitPostName('a.', '.')).toThrow(/source\.event/);
  });
});
