import fc from 'fast-check';
import { InvalidEventError, SerializationError } from '../../../../lib/index.js';
import {
  InvalidTopicError,
  PgDecodeError,
  decodeEvent,
  encodeEvent,
  escapeJson,
  validateTopic,
} from '../../../../lib/pg/index.js';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

describe('pg-hub codec: the vectors of research 2.2', () => {
  const vectors: [string, readonly bigint[] | null, unknown, string][] = [
    ['1: no key, no value', null, null, 'e'],
    ['2: $ escaped', [42n], { id: 7, note: 'cost $5' }, 'e42:{"id":7,"note":"cost \\u00245"}'],
    [
      '3: int64 bounds',
      [INT64_MIN, 0n, INT64_MAX],
      [1, 'a'],
      'e-9223372036854775808,0,9223372036854775807:[1,"a"]',
    ],
    ['4: negative last key keeps its sign', [1n, -2n], null, 'e1,-2'],
    ['5: only dollars', [3n], '$$', 'e3:"\\u0024\\u0024"'],
    ['6: empty key, empty object', [], {}, 'e:{}'],
    ['7: non-ASCII as \\uXXXX', null, '<a&b> é\u2028', 'e:"<a&b> \\u00e9\\u2028"'],
  ];

  it.each(vectors)('%s', (_title, key, value, payload) => {
    expect(encodeEvent(key, value)).toBe(payload);
    const decoded = decodeEvent(payload);
    expect(decoded.key).toEqual(key ?? []);
    expect(decoded.value).toEqual(value);
  });

  it('decodes what the Node original writes: e:null, a scalar key, raw UTF-8 and U+2028', () => {
    expect(decodeEvent('e:null')).toEqual({ key: [], value: null });
    expect(decodeEvent('e1,-2:null')).toEqual({ key: [1n, -2n], value: null });
    expect(decodeEvent('e-5')).toEqual({ key: [-5n], value: null });
    expect(decodeEvent('e:"<a&b> é\u2028"').value).toBe('<a&b> é\u2028');
    expect(decodeEvent('e:').value).toBeNull();
  });

  it('writes characters beyond the BMP as a surrogate pair of escapes', () => {
    expect(encodeEvent(null, '😀')).toBe('e:"\\ud83d\\ude00"');
    expect(decodeEvent(encodeEvent(null, '😀')).value).toBe('😀');
  });

  it.each([
    ['', 'empty payload'],
    ['x1:{}', 'does not start with "e"'],
    ['E1', 'does not start with "e"'],
    ['e1,,2', 'malformed key'],
    ['e,1', 'malformed key'],
    ['e1,', 'malformed key'],
    ['e 1', 'malformed key'],
    ['e+1', 'malformed key'],
    ['e0x10', 'malformed key'],
    ['e1.5', 'malformed key'],
    ['e--1', 'malformed key'],
    ['e9223372036854775808', 'outside int64'],
    ['e-9223372036854775809', 'outside int64'],
    ['e99999999999999999999', 'malformed key'],
    ['e1:{bad', 'bad JSON'],
    ['e1:undefined', 'bad JSON'],
  ])('rejects %j (%s) with a PgDecodeError', (payload, reason) => {
    expect(() => decodeEvent(payload)).toThrow(PgDecodeError);
    expect(() => decodeEvent(payload)).toThrow(reason);
  });

  it('refuses bad keys and values with typed errors', () => {
    expect(() => encodeEvent([INT64_MAX + 1n], 1)).toThrow(InvalidEventError);
    expect(() => encodeEvent([1.5 as never], 1)).toThrow(InvalidEventError);
    expect(() => encodeEvent(['1' as never], 1)).toThrow(InvalidEventError);
    expect(() => encodeEvent(null, { n: 1n })).toThrow(SerializationError);
    expect(() => encodeEvent(null, { when: NaN })).toThrow('data.when');
    expect(encodeEvent(5n, 1)).toBe('e5:1');
    expect(encodeEvent([7], 1)).toBe('e7:1');
  });

  it('accepts only lower-case identifiers of at most 63 bytes as topics', () => {
    for (const good of ['a', '_x', 'orders_stm', 'a1', 'a'.repeat(63)])
      expect(validateTopic(good)).toBe(good);
    for (const bad of [
      '',
      'Orders',
      '1abc',
      'a-b',
      'a b',
      'ordérs',
      'a'.repeat(64),
      'a"b',
      42,
      null,
    ]) {
      expect(() => validateTopic(bad)).toThrow(InvalidTopicError);
    }
  });
});

describe('pg-hub codec: properties', () => {
  const int64 = fc.bigInt({ min: INT64_MIN, max: INT64_MAX });

  it('round-trips any int64 key and JSON value through a pure-ASCII payload without $', () => {
    fc.assert(
      fc.property(fc.array(int64, { maxLength: 8 }), fc.jsonValue(), (key, value) => {
        const payload = encodeEvent(key, value);
        expect([...payload].every(c => c.charCodeAt(0) < 0x80)).toBe(true);
        expect(payload.includes('$')).toBe(false);
        const decoded = decodeEvent(payload);
        expect(decoded.key).toEqual(key);
        expect(decoded.value).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips any unicode string value', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), value => {
        expect(decodeEvent(encodeEvent([1n], value)).value).toBe(value);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws anything but PgDecodeError on arbitrary input', () => {
    const payloads = fc.oneof(
      fc.string(),
      fc.string({ unit: fc.constantFrom('e', '-', ',', ':', '0', '9', '{', '}', '"', ' ') }),
      fc
        .tuple(fc.array(fc.bigInt(), { maxLength: 4 }), fc.string())
        .map(([keys, rest]) => `e${keys.join(',')}${rest}`),
    );
    fc.assert(
      fc.property(payloads, payload => {
        try {
          const { key } = decodeEvent(payload);
          for (const part of key) expect(part >= INT64_MIN && part <= INT64_MAX).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(PgDecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('escapeJson', () => {
  it('hands pure ASCII without `$` back as it is, escapes `$` and every non-ASCII unit', () => {
    const ascii = JSON.stringify({ s: 'x'.repeat(4000), n: 1 });
    expect(escapeJson(ascii)).toBe(ascii);
    expect(escapeJson('"a$b"')).toBe('"a\\u0024b"');
    // é and ÿ fit one byte per unit in V8 (a one-byte string), still not ASCII.
    expect(escapeJson('"é ÿ"')).toBe('"\\u00e9 \\u00ff"');
    // A lone surrogate (3 bytes as UTF-8 replacement) and a pair.
    expect(escapeJson('"\ud800"')).toBe('"\\ud800"');
    expect(escapeJson('"😀"')).toBe('"\\ud83d\\ude00"');
    for (const text of ['"\u0080"', '"€"', '"x$"', '"\ud800"', '"ü"'])
      expect(escapeJson(text)).toMatch(/^[\x20-\x23\x25-\x7e]+$/);
  });
});
