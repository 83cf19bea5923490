import { ID_BLOCK, ROPE_BLOCK, UuidSource } from '../../../lib/bus/event-bus.ids.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const kinds = [
  { kind: 'rope', block: ROPE_BLOCK, next: (source: UuidSource) => source.uuid() },
  { kind: 'flat', block: ID_BLOCK, next: (source: UuidSource) => source.flatUuid() },
];

describe('UuidSource', () => {
  it.each(kinds)(
    'makes $kind ids in the version-4 UUID layout, all different, across many blocks',
    ({ next }) => {
      const source = new UuidSource();
      const seen = new Set<string>();
      for (let i = 0; i < 10_000; i++) {
        const id = next(source);
        expect(id).toMatch(V4);
        seen.add(id);
      }
      expect(seen.size).toBe(10_000);
    },
  );

  it.each(kinds)(
    'counts through a $kind block in its last two hex digits, one prefix per block',
    ({ block, next }) => {
      const source = new UuidSource();
      const ids = Array.from({ length: block }, () => next(source));
      expect(new Set(ids.map(id => id.slice(0, 34))).size).toBe(1);
      expect(ids.map(id => id.slice(34))).toEqual(
        Array.from({ length: block }, (_, i) => i.toString(16).padStart(2, '0')),
      );
      expect(next(source).slice(0, 34)).not.toBe(ids[0].slice(0, 34));
    },
  );

  it('never repeats an id between the two kinds (each block its own random bits)', () => {
    const source = new UuidSource();
    const prefixes = new Set<string>();
    for (let i = 0; i < ROPE_BLOCK * 4; i++) {
      prefixes.add(source.uuid().slice(0, 34));
      prefixes.add(source.flatUuid().slice(0, 34));
    }
    expect(prefixes.size).toBe(4 + (ROPE_BLOCK * 4) / ID_BLOCK);
  });

  it('draws fresh random bits for each block (two sources never share one)', () => {
    const prefixes = new Set<string>();
    for (let s = 0; s < 50; s++) {
      const source = new UuidSource();
      for (let i = 0; i < ID_BLOCK * 2; i++) prefixes.add(source.flatUuid().slice(0, 34));
    }
    expect(prefixes.size).toBe(100);
  });

  it.each(kinds)(
    'gives each $kind id a string of its own (later blocks do not change earlier ids)',
    ({ next }) => {
      const source = new UuidSource();
      const first = next(source);
      const copy = `${first}`;
      for (let i = 0; i < 10_000; i++) next(source);
      expect(first).toBe(copy);
    },
  );
});
