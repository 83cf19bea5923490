import { transformPatternToRoute } from '@nestjs/microservices/utils/transform-pattern.utils.js';
import { validatePattern } from '../../../lib/microservices/base/pattern.utils.js';
import { InvalidPatternError } from '../../../lib/microservices/microservice.errors.js';
import { pgChannelOf } from '../../../lib/microservices/pg/pg-notify.channel.js';

const toRoute = (pattern: never): string => transformPatternToRoute(pattern) as string;

describe('validatePattern', () => {
  it('returns Nest route of strings, numbers and plain objects (keys sorted)', () => {
    expect(validatePattern('orders.created', toRoute)).toBe('orders.created');
    expect(validatePattern(42, toRoute)).toBe('42');
    expect(validatePattern({ b: 1, a: { z: true, y: 'x' } }, toRoute)).toBe(
      '{"a":{"y":"x","z":true},"b":1}',
    );
  });

  it.each([
    ['an empty string', ''],
    ['NaN', Number.NaN],
    ['null', null],
    ['an array', ['a']],
    ['a Date', new Date(0)],
    ['a RegExp', /orders\..*/],
    ['an empty object', {}],
    ['an undefined leaf', { cmd: undefined }],
    ['an array leaf', { cmd: [1] }],
    ['a null leaf', { cmd: null }],
    ['a function leaf', { cmd: () => 1 }],
    ['an Infinity leaf', { n: Infinity }],
    ['too deep', { a: { b: { c: { d: { e: { f: 1 } } } } } }],
    ['too many keys', Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i]))],
  ])('refuses %s with InvalidPatternError', (_name, pattern) => {
    expect(() => validatePattern(pattern, toRoute)).toThrow(InvalidPatternError);
  });
});

describe('pgChannelOf', () => {
  it('uses a string pattern as the channel and hashes object patterns', () => {
    expect(pgChannelOf('orders_created', 'orders_created')).toBe('orders_created');
    const channel = pgChannelOf('{"cmd":"sum"}', { cmd: 'sum' });
    expect(channel).toMatch(/^nest_[0-9a-f]{40}$/);
    expect(pgChannelOf('{"cmd":"sum"}', { cmd: 'sum' })).toBe(channel);
  });

  it.each(['Orders', 'orders.created', 'x'.repeat(64), '1orders', 'nest_reply_abc'])(
    'refuses %s',
    name => {
      expect(() => pgChannelOf(name, name)).toThrow(InvalidPatternError);
    },
  );
});
