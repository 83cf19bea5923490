import { UuidSource } from '../../../lib/bus/event-bus.ids.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('UuidSource', () => {
  it('makes random version-4 UUIDs, all different, across many refills', () => {
    const source = new UuidSource();
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = source.uuid();
      expect(id).toMatch(V4);
      seen.add(id);
    }
    expect(seen.size).toBe(5000);
  });

  it('gives each id a string of its own (later refills do not change earlier ids)', () => {
    const source = new UuidSource();
    const first = source.uuid();
    const copy = `${first}`;
    for (let i = 0; i < 1000; i++) source.uuid();
    expect(first).toBe(copy);
  });
});
