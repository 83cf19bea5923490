import { fastStringPrototype } from '../../../lib/common/fast-string-prototype.js';

describe('fastStringPrototype', () => {
  it('leaves String.prototype as it was (nothing written onto it), and strings work', () => {
    const before = Object.getOwnPropertyNames(String.prototype).sort();
    class Verbatim extends String {}
    expect(new Verbatim('x').toString()).toBe('x');
    fastStringPrototype();
    fastStringPrototype();
    expect(Object.getOwnPropertyNames(String.prototype).sort()).toEqual(before);
    expect('herald' in String.prototype).toBe(false);
    expect('abcdef'.slice(1, 3)).toBe('bc');
  });
});
