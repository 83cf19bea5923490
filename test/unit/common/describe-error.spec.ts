import { describeError, stackOf } from '../../../lib/common/describe-error.js';

describe('describeError', () => {
  it('names errors, their code, and other thrown values', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(
      describeError(Object.assign(new Error('connect refused'), { code: 'ECONNREFUSED' })),
    ).toBe('connect refused (ECONNREFUSED)');
    expect(
      describeError(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1'), { code: 'ECONNREFUSED' }),
      ),
    ).toBe('connect ECONNREFUSED 127.0.0.1');
    expect(describeError(new TypeError(''))).toBe('TypeError');
    expect(describeError('plain')).toBe('plain');
    expect(describeError({ a: 1 })).toBe('{"a":1}');
    expect(describeError(undefined)).toBe('undefined');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(describeError(cyclic)).toBe('[object Object]');
    expect(stackOf(new Error('x'))).toContain('Error: x');
    expect(stackOf('x')).toBeUndefined();
  });
});
