import fc from 'fast-check';
import { HandledIds } from '../../../../lib/transports/ipc/ipc.handled-ids.js';

/** Records `id` (as its UTF-8 bytes at an offset inside a larger buffer, as in a frame). */
function seen(ids: HandledIds, id: string): boolean {
  const bytes = Buffer.concat([Buffer.from('xx'), Buffer.from(id), Buffer.from('yy')]);
  return ids.firstTime(bytes, 2, bytes.length - 2);
}

describe('HandledIds', () => {
  it('tells a repeated id apart, and only a repeated one (against a Set, any ids)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 40 }), { maxLength: 300 }),
        list => {
          const ids = new HandledIds(1024);
          const set = new Set<string>();
          for (const id of list) {
            expect(seen(ids, id)).toBe(!set.has(id));
            set.add(id);
          }
        },
      ),
    );
  });

  it('remembers the last capacity to 2 x capacity ids, forgetting the oldest first', () => {
    const ids = new HandledIds(4);
    for (let i = 0; i < 10; i++) expect(seen(ids, `id-${i}`)).toBe(true);
    // Generations of 4: ids 8-9 in the current one, 4-7 in the previous, 0-3 forgotten.
    for (let i = 4; i < 10; i++) expect(seen(ids, `id-${i}`)).toBe(false);
    expect(seen(ids, 'id-0')).toBe(true);
  });

  it('keeps ids longer than its first arena, and the empty id', () => {
    const ids = new HandledIds(6);
    const long = 'x'.repeat(100_000);
    expect(seen(ids, long)).toBe(true);
    expect(seen(ids, long)).toBe(false);
    expect(seen(ids, `${long}y`)).toBe(true);
    expect(seen(ids, '')).toBe(true);
    expect(seen(ids, '')).toBe(false);
  });
});

describe('HandledIds at the default capacity', () => {
  it('grows as ids come and forgets the oldest generation past it', () => {
    const ids = new HandledIds();
    for (let i = 0; i < 140_000; i++) expect(seen(ids, `${i}`)).toBe(true);
    // 140,000 = 2 x 65,536 + 8,928: the last 74,464 are remembered.
    expect(seen(ids, '139999')).toBe(false);
    expect(seen(ids, `${140_000 - 74_464}`)).toBe(false);
    expect(seen(ids, `${140_000 - 74_465}`)).toBe(true);
  });
});
