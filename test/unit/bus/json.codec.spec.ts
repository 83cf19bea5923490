import fc from 'fast-check';
import { JsonCodec, SerializationError } from '../../../lib/index.js';

const codec = new JsonCodec();
const viaJson = (value: unknown): unknown => {
  const text = JSON.stringify(value);
  return text === undefined ? undefined : JSON.parse(text);
};

/** Deep equality that tells -0 from 0 and a missing key from an undefined one. */
const same = (a: unknown, b: unknown): boolean => {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    k => Object.prototype.hasOwnProperty.call(b, k) && same((a as never)[k], (b as never)[k]),
  );
};

/** Values of every kind JSON can meet, the troublesome ones included. */
const anything = fc.anything({
  maxDepth: 3,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withObjectString: true,
  withNullPrototype: true,
  withTypedArray: true,
  withSparseArray: true,
  withUnicodeString: true,
});

/** The codec's text for `value`, or undefined where it refuses it (always with a SerializationError). */
function encodeOrRefuse(value: unknown): string | undefined {
  try {
    return codec.encode(value);
  } catch (error) {
    expect(error).toBeInstanceOf(SerializationError);
    return undefined;
  }
}

describe('JsonCodec', () => {
  it('round-trips every accepted value exactly as JSON does', () => {
    fc.assert(
      fc.property(anything, value => {
        const encoded = encodeOrRefuse(value);
        if (encoded !== undefined) expect(codec.decode(encoded)).toEqual(viaJson(value));
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 2000) },
    );
  });

  it('rejects only values JSON would have changed or dropped', () => {
    fc.assert(
      fc.property(anything, value => {
        try {
          codec.encode(value);
        } catch (error) {
          expect(error).toBeInstanceOf(SerializationError);
          let changed: boolean;
          try {
            changed = !same(viaJson(value), value);
          } catch {
            changed = true; // JSON.stringify itself throws (BigInt, cycles)
          }
          expect(changed).toBe(true);
        }
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 2000) },
    );
  });

  it('replays the counterexamples found so far', () => {
    expect(codec.decode(codec.encode([[new Number(-0)]]))).toEqual([[0]]);
    expect(() => codec.encode([new Number(Infinity)])).toThrow('data[0]');
    const own = JSON.parse('{"__proto__":""}') as object;
    expect(Object.keys(codec.decode(codec.encode(own)) as object)).toEqual(['__proto__']);
  });

  it('changes nothing an accepted value holds beyond the documented rules', () => {
    // Documented: Dates (and other toJSON objects, boxed primitives) become their JSON form,
    // undefined properties are dropped, -0 becomes 0. Anything else must survive unchanged.
    const documented = (value: unknown): unknown => {
      if (Object.is(value, -0)) return 0;
      if (value === null || typeof value !== 'object') return value;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return viaJson(value);
      if (value instanceof Number || value instanceof String || value instanceof Boolean) {
        return documented(value.valueOf());
      }
      if (Array.isArray(value)) return value.map(documented);
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return value; // must survive as it is
      const out: Record<string, unknown> = proto === null ? Object.create(null) : {};
      for (const key of Object.keys(value)) {
        const item = (value as Record<string, unknown>)[key];
        // defineProperty: an own `__proto__` key stays a key, as JSON.parse makes it
        if (item !== undefined) {
          Object.defineProperty(out, key, {
            value: documented(item),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
      }
      return out;
    };
    fc.assert(
      fc.property(anything, value => {
        const encoded = encodeOrRefuse(value);
        if (encoded !== undefined) expect(codec.decode(encoded)).toEqual(documented(value));
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 2000) },
    );
  });

  it.each([
    [{ items: [1, 2, 3, { when: NaN }] }, 'data.items[3].when'],
    [{ n: 10n }, 'data.n'],
    [{ f: () => 1 }, 'data.f'],
    [{ s: Symbol('x') }, 'data.s'],
    [{ inf: -Infinity }, 'data.inf'],
    [{ m: new Map() }, 'data.m'],
    [{ s: new Set([1]) }, 'data.s'],
    [{ b: Buffer.from('x') }, 'data.b'],
    [{ t: new Uint8Array(2) }, 'data.t'],
    [{ a: new ArrayBuffer(2) }, 'data.a'],
    [{ 'odd key': [undefined] }, 'data["odd key"][0]'],
    [{ d: new Date(NaN) }, 'data.d'],
    [{ e: new Error('x') }, 'data.e'],
    [{ r: /x/ }, 'data.r'],
    [[1, , 3], 'data[1]'], // eslint-disable-line no-sparse-arrays
    [{ boxed: new Number(NaN) }, 'data.boxed'],
    [{ boxed: Object(1n) }, 'data.boxed'],
  ])('names the path of %p', (value, path) => {
    expect(() => codec.encode(value)).toThrow(SerializationError);
    try {
      codec.encode(value);
    } catch (error) {
      expect((error as SerializationError).path).toBe(path);
      expect((error as Error).message).toContain(path);
    }
  });

  it('rejects cycles but accepts shared references', () => {
    const shared = { x: 1 };
    expect(codec.decode(codec.encode({ a: shared, b: shared }))).toEqual({
      a: { x: 1 },
      b: { x: 1 },
    });
    const cyclic: Record<string, unknown> = { list: [] };
    (cyclic.list as unknown[]).push(cyclic);
    expect(() => codec.encode(cyclic)).toThrow('data.list[0]: circular reference');
  });

  it('turns Dates into ISO strings and honours toJSON', () => {
    const when = new Date(Date.UTC(2020, 1, 3));
    expect(codec.decode(codec.encode({ when }))).toEqual({ when: '2020-02-03T00:00:00.000Z' });
    expect(codec.decode(codec.encode({ money: { toJSON: () => '1.00 EUR' } }))).toEqual({
      money: '1.00 EUR',
    });
    expect(() => codec.encode({ bad: { toJSON: () => 1n } })).toThrow('data.bad');
  });

  it('encodes no data as the empty payload and back', () => {
    expect(codec.encode(undefined)).toBe('');
    expect(codec.decode('')).toBeUndefined();
    expect(codec.decode(codec.encode(null))).toBeNull();
  });

  it('accepts plain data nested deeper than the quick walk goes, and still names a deep cycle', () => {
    let deep: Record<string, unknown> = { leaf: [1, 'two', null, true] };
    for (let i = 0; i < 100; i++) deep = { next: deep };
    expect(codec.decode(codec.encode(deep))).toEqual(deep);
    const cyclic: Record<string, unknown> = {};
    let at = cyclic;
    for (let i = 0; i < 40; i++) at = (at.next = {}) as Record<string, unknown>;
    at.back = cyclic;
    expect(() => codec.encode(cyclic)).toThrow('circular reference');
  });

  it('judges a key someone wrote onto Object.prototype as JSON does (own keys only)', () => {
    (Object.prototype as Record<string, unknown>).polluted = () => undefined;
    try {
      expect(codec.encode({ a: 1 })).toBe('{"a":1}');
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted;
    }
  });

  it('writes exactly the text JSON.stringify writes for every accepted value (one pass or two)', () => {
    fc.assert(
      fc.property(anything, value => {
        const encoded = encodeOrRefuse(value);
        if (encoded !== undefined) {
          expect(encoded).toBe(value === undefined ? '' : JSON.stringify(value));
        }
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 2000) },
    );
    // Escapes, lone surrogates, odd keys, -0, large values (past the one-pass budget).
    const samples: unknown[] = [
      { 'q"uote': 'a\\b\n\u0001', lone: '\ud800x', pair: '\ud83d\ude00', sep: '\u2028' },
      { n: -0, e: 1e21, f: 0.1 + 0.2, i: -5, nested: [[[]], {}, [null, false]] },
      { 2: 'b', 1: 'a', z: 1, __proto__: null },
      { items: Array.from({ length: 300 }, (_, i) => ({ i, name: `item ${i}` })) },
    ];
    for (const sample of samples) expect(codec.encode(sample)).toBe(JSON.stringify(sample));
  });

  it('lets JSON call a toJSON inherited from an Array subclass or written onto the prototypes', () => {
    class Tagged extends Array<number> {
      toJSON(): string {
        return `tagged:${this.length}`;
      }
    }
    expect(codec.encode({ t: Tagged.from([1, 2]) })).toBe('{"t":"tagged:2"}');
    for (const proto of [Object.prototype, Array.prototype]) {
      Object.defineProperty(proto, 'toJSON', {
        value: () => 'written',
        configurable: true,
        writable: true,
      });
      try {
        expect(codec.encode({ a: [1] })).toBe(JSON.stringify({ a: [1] }));
      } finally {
        delete (proto as { toJSON?: unknown }).toJSON;
      }
    }
  });

  it('judges what a toJSON written onto Object.prototype (not enumerable) returns', () => {
    // The lean walk reads toJSON on each object: this one is not an own
    // key and not enumerable, yet JSON calls it, so the full check judges.
    Object.defineProperty(Object.prototype, 'toJSON', {
      value: () => 1n,
      configurable: true,
      writable: true,
    });
    try {
      expect(() => codec.encode({ a: 1 })).toThrow(SerializationError);
    } finally {
      delete (Object.prototype as { toJSON?: unknown }).toJSON;
    }
    // An own toJSON that is not a function is data, as JSON writes it.
    expect(codec.encode({ toJSON: 'x', n: 1 })).toBe('{"toJSON":"x","n":1}');
  });
});
