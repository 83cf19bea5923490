import {
  BufferBatch,
  entryFromBuffers,
  FramedBatch,
  parseFramedEntries,
  parseGap,
} from '../../../../lib/transports/redis/stream.entry.js';

/** Frames entries as the read script does: its count line (unless `head` has one), `head`, the entries. */
function frame(entries: [string, Buffer[]][], head = ''): Buffer {
  const count =
    entries.length === 0 || head.startsWith('=')
      ? ''
      : `=${entries.length} ${entries[entries.length - 1][0]}\n`;
  const parts: Buffer[] = [Buffer.from(count + head)];
  for (const [id, fields] of entries) {
    parts.push(Buffer.from(`${id}\n${fields.length}\n`));
    for (const field of fields) parts.push(Buffer.from(`${field.length}\n`), field);
  }
  return Buffer.concat(parts);
}

describe('stream entries as read', () => {
  it('parses framed entries, keeping multi-byte UTF-8 and newlines inside values', () => {
    const reply = frame([
      ['1-0', [Buffer.from('a'), Buffer.from('é\nx')]],
      ['2-5', [Buffer.from('b'), Buffer.from('')]],
    ]);
    expect(parseFramedEntries(reply)).toEqual({
      entries: [
        ['1-0', ['a', 'é\nx']],
        ['2-5', ['b', '']],
      ],
      gap: undefined,
    });
  });

  it('reads field names that change from entry to entry (same length, other bytes, non-ASCII)', () => {
    const reply = frame([
      ['1-0', [Buffer.from('ab'), Buffer.from('1'), Buffer.from('cd'), Buffer.from('2')]],
      ['2-0', [Buffer.from('ab'), Buffer.from('3'), Buffer.from('ce'), Buffer.from('4')]],
      ['3-0', [Buffer.from('é'), Buffer.from('5')]],
      ['4-0', [Buffer.from('Ã©'), Buffer.from('6'), Buffer.from('cd'), Buffer.from('7')]],
    ]);
    expect(parseFramedEntries(reply).entries).toEqual([
      ['1-0', ['ab', '1', 'cd', '2']],
      ['2-0', ['ab', '3', 'ce', '4']],
      ['3-0', ['é', '5']],
      ['4-0', ['Ã©', '6', 'cd', '7']],
    ]);
  });

  it('reads the gap line the read script puts first', () => {
    const reply = frame([['9-0', [Buffer.from('k'), Buffer.from('v')]]], '#15 0-0 7-0\n');
    expect(parseFramedEntries(reply).gap).toEqual({ lost: 15, after: '0-0', before: '7-0' });
    expect(parseGap('#? 1-0 2-0')).toEqual({ lost: undefined, after: '1-0', before: '2-0' });
    expect(parseGap('nonsense')).toBeUndefined();
  });

  it('keeps the original bytes of an entry with a field that is not UTF-8', () => {
    const bad = Buffer.from([0x61, 0xff]);
    const [entry] = parseFramedEntries(frame([['3-0', [Buffer.from('p'), bad]]])).entries;
    expect(entry[0]).toBe('3-0');
    expect(entry[2]?.fields).toEqual([Buffer.from('p'), bad]);
    expect(entry[2]?.badField).toBe(bad.toString());
  });

  it('flags only the entries that are not UTF-8 in a reply that is not (good ones around them parse as text)', () => {
    const euro = Buffer.from('€'); // 3 bytes: a field cut inside it is not UTF-8 though the reply is whole
    const [first, cut, last] = parseFramedEntries(
      frame([
        ['1-0', [Buffer.from('a'), Buffer.from('é')]],
        ['2-0', [euro.subarray(0, 2), euro.subarray(2)]],
        ['3-0', [Buffer.from('b'), Buffer.from('日本')]],
      ]),
    ).entries;
    expect(first).toEqual(['1-0', ['a', 'é']]);
    expect(last).toEqual(['3-0', ['b', '日本']]);
    expect(cut[0]).toBe('2-0');
    expect(cut[2]?.fields).toEqual([euro.subarray(0, 2), euro.subarray(2)]);
  });

  it('refuses a malformed reply', () => {
    expect(() => parseFramedEntries(Buffer.from('=1 1-0\n1-0\n2\n1\na1'))).toThrow(/malformed/);
    expect(() => parseFramedEntries(Buffer.from('=1 1-0\n1-0\n2'))).toThrow(/malformed/);
    expect(() => parseFramedEntries(Buffer.from('=1 1-0\n1-0'))).toThrow(/malformed/);
    expect(() => parseFramedEntries(Buffer.from('=1 1-0\n1-0\n1\n9\nab'))).toThrow(/malformed/);
    expect(() => parseFramedEntries(Buffer.from('=1\n1-0\n1\n1\na'))).toThrow(/malformed/);
  });

  it('turns Buffer replies into text entries, flagging bytes that are not UTF-8', () => {
    expect(entryFromBuffers([Buffer.from('1-0'), [Buffer.from('k'), Buffer.from('v')]])).toEqual([
      '1-0',
      ['k', 'v'],
    ]);
    expect(entryFromBuffers([Buffer.from('1-0'), null])).toEqual(['1-0', null]);
    const entry = entryFromBuffers([
      Buffer.from('2-0'),
      [Buffer.from([0xc3, 0x28]), Buffer.from('v')],
    ]);
    expect(entry[2]?.fields[0]).toEqual(Buffer.from([0xc3, 0x28]));
  });

  describe('a batch taken one entry at a time', () => {
    const two: [string, Buffer[]][] = [
      ['1-0', [Buffer.from('a'), Buffer.from('x')]],
      ['2-5', [Buffer.from('a'), Buffer.from('y')]],
    ];

    it("knows its size and newest id from the script's count line before parsing an entry", () => {
      const batch = new FramedBatch(frame(two, '=2 2-5\n#3 0-0 1-0\n'));
      expect(batch.size).toBe(2);
      expect(batch.lastId).toBe('2-5');
      expect(batch.gap).toEqual({ lost: 3, after: '0-0', before: '1-0' });
      expect(batch.next()).toEqual(['1-0', ['a', 'x']]);
      expect(batch.next()).toEqual(['2-5', ['a', 'y']]);
      expect(batch.next()).toBeUndefined();
      expect(batch.next()).toBeUndefined();
    });

    it('refuses entries without the count line, and reads a reply of no entries', () => {
      expect(() => new FramedBatch(Buffer.from('1-0\n1\n1\na'))).toThrow(/malformed/);
      const empty = new FramedBatch(Buffer.from('#3 0-0 1-0\n'));
      expect([empty.size, empty.lastId, empty.next()]).toEqual([0, undefined, undefined]);
      expect(empty.gap).toEqual({ lost: 3, after: '0-0', before: '1-0' });
      expect(parseFramedEntries(frame(two, '=2 2-5\n')).entries).toHaveLength(2);
    });

    it('refuses a reply whose entries do not match its count line, once taken', () => {
      const batch = new FramedBatch(frame(two, '=3 9-0\n'));
      expect(batch.next()).toEqual(['1-0', ['a', 'x']]);
      expect(batch.next()).toEqual(['2-5', ['a', 'y']]);
      expect(() => batch.next()).toThrow(/malformed/);
    });

    it('refuses a cut entry when it is taken, after the whole ones before it', () => {
      const reply = Buffer.concat([frame(two, '=3 3-0\n'), Buffer.from('3-0\n2\n1\na9\nab')]);
      const batch = new FramedBatch(reply);
      expect(batch.next()).toEqual(['1-0', ['a', 'x']]);
      expect(batch.next()).toEqual(['2-5', ['a', 'y']]);
      expect(() => batch.next()).toThrow(/malformed/);
    });

    it('converts a plain XREADGROUP reply entry by entry, letting go of each', () => {
      const reply: [Buffer, Buffer[]][] = [
        [Buffer.from('1-0'), [Buffer.from('a'), Buffer.from('x')]],
        [Buffer.from('2-0'), [Buffer.from('a'), Buffer.from('y')]],
      ];
      const batch = new BufferBatch(reply);
      expect([batch.size, batch.lastId]).toEqual([2, '2-0']);
      expect(batch.next()).toEqual(['1-0', ['a', 'x']]);
      expect(reply[0]).toBeUndefined();
      expect(batch.next()).toEqual(['2-0', ['a', 'y']]);
      expect(batch.next()).toBeUndefined();
    });
  });
});
