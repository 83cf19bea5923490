import { deepFreeze } from '../../../../lib/transports/pg/pg.freeze.js';

describe('deepFreeze', () => {
  it('freezes a parsed JSON value all the way down and returns it', () => {
    const value = JSON.parse('{"a":[1,{"b":[2,{"c":3}]}],"d":{"e":null}}') as {
      a: [number, { b: [number, { c: number }] }];
      d: { e: null };
    };
    expect(deepFreeze(value)).toBe(value);
    expect(Object.isFrozen(value)).toBe(true);
    expect(Object.isFrozen(value.a)).toBe(true);
    expect(Object.isFrozen(value.a[1].b[1])).toBe(true);
    expect(Object.isFrozen(value.d)).toBe(true);
  });

  it('passes primitives and null through', () => {
    expect(deepFreeze(1)).toBe(1);
    expect(deepFreeze('x')).toBe('x');
    expect(deepFreeze(null)).toBeNull();
  });
});
