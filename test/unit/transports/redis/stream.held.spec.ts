import { HeldEntries } from '../../../../lib/transports/redis/stream.held.js';
import type { RawEntry } from '../../../../lib/transports/redis/stream.entry.js';

describe('held entries (group mode)', () => {
  it('adds and releases records in any order, each once, keeping the rest findable', () => {
    const held = new HeldEntries();
    const records = ['1-0', '2-0', '3-0', '4-0'].map(id => held.add([id, ['k', 'v']]));
    expect(held.size).toBe(4);
    expect(held.remove(records[1])).toBe(true);
    expect(held.remove(records[1])).toBe(false); // released once only
    expect(held.holds(records[1])).toBe(false);
    expect(held.remove(records[3])).toBe(true); // the last one
    expect(held.ids().sort()).toEqual(['1-0', '3-0']);
    expect(held.values().every(record => held.holds(record))).toBe(true);
    expect(held.remove(records[0])).toBe(true);
    expect(held.remove(records[2])).toBe(true);
    expect(held.size).toBe(0);
    expect(held.ids()).toEqual([]);
    const again = held.add(['5-0', null]);
    expect(held.holds(again)).toBe(true);
    expect(held.ids()).toEqual(['5-0']);
  });

  it("makes each record with the caller's hold when given one (the transport's delivery is the record)", () => {
    class Record {
      retryTimer: NodeJS.Timeout | undefined = undefined;
      slot = -1;
      out = true;
      constructor(readonly entry: RawEntry) {}
    }
    const held = new HeldEntries();
    held.hold = entry => new Record(entry);
    const first = held.add(['1-0', ['k', 'v']]);
    const second = held.add(['2-0', null]);
    expect(first).toBeInstanceOf(Record);
    expect([first.slot, second.slot]).toEqual([0, 1]);
    expect(first.out).toBe(false); // not handed out yet
    expect(held.remove(first)).toBe(true);
    expect(held.ids()).toEqual(['2-0']);
    expect(held.holds(second)).toBe(true);
  });
});
