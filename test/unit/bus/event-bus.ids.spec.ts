import { ID_BLOCK, UuidSource } from '../../../lib/bus/event-bus.ids.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('UuidSource', () => {
  it('makes ids in the version-4 UUID layout, all different, across many blocks', () => {
    const source = new UuidSource();
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = source.uuid();
      expect(id).toMatch(V4);
      seen.add(id);
    }
    expect(seen.size).toBe(10_000);
  });

  it('counts through a block in its last two hex digits, one prefix per block', () => {
    const source = new UuidSource();
    const block = Array.from({ length: ID_BLOCK }, () => source.uuid());
    expect(new Set(block.map(id => id.slice(0, 34))).size).toBe(1);
    expect(block.map(id => id.slice(34))).toEqual(
      Array.from({ length: ID_BLOCK }, (_, i) => i.toString(16).padStart(2, '0')),
    );
    expect(source.uuid().slice(0, 34)).not.toBe(block[0].slice(0, 34));
  });

  it('draws fresh random bits for each block (two sources never share one)', () => {
    const prefixes = new Set<string>();
    for (let s = 0; s < 50; s++) {
      const source = new UuidSource();
      for (let i = 0; i < ID_BLOCK * 2; i++) prefixes.add(source.uuid().slice(0, 34));
    }
    expect(prefixes.size).toBe(100);
  });

  it('gives each id a string of its own (later blocks do not change earlier ids)', () => {
    const source = new UuidSource();
    const first = source.uuid();
    const copy = `${first}`;
    for (let i = 0; i < 10_000; i++) source.uuid();
    expect(first).toBe(copy);
  });
});
