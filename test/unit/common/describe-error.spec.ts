import { createConnection } from 'node:net';
import { runInNewContext } from 'node:vm';

import { asError, describeError, stackOf } from '../../../lib/common/describe-error.js';

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

  it('reads errors of another realm as errors, not as JSON', () => {
    const foreign = runInNewContext(
      "Object.assign(new Error('connect ECONNREFUSED ::1:1'), { code: 'ECONNREFUSED' })",
    ) as unknown;
    expect(foreign instanceof Error).toBe(false);
    expect(describeError(foreign)).toBe('connect ECONNREFUSED ::1:1');
    expect(stackOf(foreign)).toContain('connect ECONNREFUSED');
  });

  it('names the inner errors of an AggregateError that has no message of its own', () => {
    const both = Object.assign(
      new AggregateError([
        Object.assign(new Error('connect ECONNREFUSED ::1:1'), { code: 'ECONNREFUSED' }),
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      ]),
      { code: 'ECONNREFUSED' },
    );
    expect(describeError(both)).toBe(
      'connect ECONNREFUSED ::1:1; connect ECONNREFUSED 127.0.0.1:1',
    );
    expect(describeError(new AggregateError([]))).toBe('AggregateError');
  });

  it('names the real error of a refused connection to a name with two addresses', async () => {
    const error = await new Promise<unknown>(resolve => {
      const socket = createConnection({ host: 'localhost', port: 1, autoSelectFamily: true });
      socket.on('error', resolve);
    });
    expect(describeError(error)).toMatch(/ECONNREFUSED/);
    expect(describeError(error)).not.toMatch(/^\{/);
  });

  it('asError hands on an Error of any realm as it is, and names anything else', () => {
    const foreign = runInNewContext(
      "Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })",
    ) as Error & { code: string };
    expect(asError(foreign)).toBe(foreign);
    expect((asError(foreign) as Error & { code?: string }).code).toBe('ECONNRESET');
    const own = new TypeError('bad');
    expect(asError(own)).toBe(own);
    expect(asError({ reason: 'x' }).message).toBe('{"reason":"x"}');
    expect(asError('plain').message).toBe('plain');
  });
});
