import { matchesPattern } from '../../../lib/testing/event.matcher.js';

describe('matchesPattern', () => {
  it('matches a deep subset', () => {
    expect(matchesPattern({ a: 1, b: { c: [1, 2], d: 'x' } }, { b: { c: [1, 2] } })).toBe(true);
    expect(matchesPattern({ a: 1 }, { a: 2 })).toBe(false);
    expect(matchesPattern({ a: [1, 2] }, { a: [1] })).toBe(false);
    expect(matchesPattern(null, {})).toBe(false);
    expect(matchesPattern('x', 'x')).toBe(true);
    expect(matchesPattern(NaN, NaN)).toBe(true);
    expect(matchesPattern(new Date(5), new Date(5))).toBe(true);
  });

  it("honours a runner's asymmetric matchers anywhere", () => {
    expect(matchesPattern({ id: 4, at: 'now' }, { id: expect.any(Number) })).toBe(true);
    expect(matchesPattern({ id: '4' }, { id: expect.any(Number) })).toBe(false);
    expect(matchesPattern([{ a: 1, b: 2 }], [expect.objectContaining({ a: 1 })])).toBe(true);
  });
});
