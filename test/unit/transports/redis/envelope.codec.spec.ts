import fc from 'fast-check';
import {
  StreamEntryError,
  decodeEnvelopeEntry,
  decodeEnvelopeFlat,
  encodeEnvelopeEntry,
  encodeEnvelopeValues,
  envelopeAffix,
  fieldsToRecord,
} from '../../../../lib/redis/index.js';
import {
  encodeCompactParts,
  encodeEnvelopeParts,
} from '../../../../lib/transports/redis/envelope.codec.js';
import type { Envelope } from '../../../../lib/index.js';

const LAYOUTS = ['compact', 'one-field', 'two-field'] as const;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const name = fc.string({ minLength: 1 }).filter(s => s !== '*');
const envelope: fc.Arbitrary<Envelope> = fc.record(
  {
    id: fc.uuid(),
    source: name,
    event: name,
    payload: fc.string(),
    origin: fc.string(),
    occurredAt: fc.date({ noInvalidDate: true }).map(d => d.toISOString()),
    key: fc.array(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), { minLength: 1 }),
    unique: fc.string({ minLength: 1 }),
    headers: fc.dictionary(fc.string(), fc.string()),
  },
  { requiredKeys: ['id', 'source', 'event', 'payload', 'origin', 'occurredAt'] },
);

describe('envelope entry codec', () => {
  it.each(LAYOUTS)('round-trips any envelope, %s', layout => {
    fc.assert(
      fc.property(envelope, value => {
        const decoded = decodeEnvelopeEntry(fieldsToRecord(encodeEnvelopeEntry(value, layout)));
        expect(decoded).toEqual({
          ...value,
          key: value.key,
          unique: value.unique,
          headers: value.headers,
        });
      }),
    );
  });

  it('writes the header byte for byte as JSON.stringify would, for any string, post after post', () => {
    const tricky = [
      'plain',
      'q"uote',
      'back\\slash',
      'tab\tnl\n',
      '\u0000\u001f',
      '\ud800',
      'x\udfff',
      '🎉',
      'é',
      '',
    ];
    const text = fc.oneof(fc.constantFrom(...tricky), fc.string(), fc.string({ unit: 'binary' }));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(text, text, text, text, text), { minLength: 1, maxLength: 5 }),
        posts => {
          // Several posts in a row: the quoted members kept from the last one must never leak into the next.
          for (const [id, source, event, origin, occurredAt] of posts) {
            const value = { id, source, event, origin, occurredAt, payload: 'a\nb' };
            const json = JSON.stringify([id, source, event, origin, occurredAt]);
            expect(encodeEnvelopeEntry(value, 'two-field')).toEqual([
              'herald',
              json,
              'payload',
              'a\nb',
            ]);
            // One field: the header, one newline, the payload (its own newlines kept).
            expect(encodeEnvelopeEntry(value, 'one-field')).toEqual(['herald', `${json}\na\nb`]);
          }
        },
      ),
    );
  });

  it('writes through the publisher (values and affix) the very entry encodeEnvelopeEntry lays out, post after post', () => {
    // Runs of posts sharing members (the affix object kept) mixed with posts of their own.
    const shared = fc.constantFrom('orders', 'créé', 'q"uote', '\ud800');
    const post = fc.oneof(
      envelope,
      fc.record({
        id: fc.oneof(fc.uuid(), fc.string()),
        source: shared,
        event: shared,
        payload: fc.string(),
        origin: shared,
        occurredAt: fc.constantFrom('2026-12-04T20:00:00.000Z', '2026-12-04T20:00:00.001Z'),
      }),
    );
    fc.assert(
      fc.property(fc.array(post, { minLength: 1, maxLength: 8 }), posts => {
        let previous: { envelope: Envelope; affix: unknown } | undefined;
        for (const value of posts) {
          const fields = encodeEnvelopeValues(value);
          const affix = envelopeAffix(value);
          const written = fields.slice();
          if (affix) {
            // What the publisher writes for a json affix: the value as JSON string content.
            const value = fields[affix.index];
            const content = affix.json ? JSON.stringify(value).slice(1, -1) : value;
            written[affix.index] = affix.prefix + content + affix.suffix;
          }
          expect(written).toEqual(encodeEnvelopeEntry(value, 'two-field'));
          // One affix object while the members after the id stay the same: one run.
          if (previous?.affix && affix) {
            const same = (['source', 'event', 'origin', 'occurredAt'] as const).every(
              member => previous!.envelope[member] === value[member],
            );
            expect(previous.affix === affix).toBe(same);
          }
          previous = { envelope: value, affix };
        }
      }),
    );
  });

  it.each(LAYOUTS)('decodes the flat reply form like the record form, %s', layout => {
    fc.assert(
      fc.property(envelope, value => {
        const flat = encodeEnvelopeEntry(value, layout);
        expect(decodeEnvelopeFlat(flat)).toEqual(decodeEnvelopeEntry(fieldsToRecord(flat)));
      }),
    );
  });

  it('never throws anything but StreamEntryError on arbitrary fields', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('herald', 'payload', 'x'),
          fc.oneof(
            fc.string(),
            fc.json(),
            // Compact-looking values: the mark, then anything (spaces, digits and newlines likely).
            fc
              .array(
                fc.oneof(fc.constantFrom(' ', '\n', '*', '9', '99999999999999999'), fc.string()),
              )
              .map(parts => `~${parts.join('')}`),
          ),
        ),
        fields => {
          for (const decoder of [
            () => decodeEnvelopeEntry(fields),
            () => decodeEnvelopeFlat(Object.entries(fields).flat()),
          ]) {
            try {
              decoder();
            } catch (error) {
              expect(error).toBeInstanceOf(StreamEntryError);
            }
          }
        },
      ),
    );
  });

  it('lays an entry out as one field and names the bad part', () => {
    const value = { id: 'i', source: 's', event: 'e', payload: '1', origin: 'o', occurredAt: 't' };
    expect(encodeEnvelopeEntry(value, 'one-field')).toEqual(['herald', '["i","s","e","o","t"]\n1']);
    expect(encodeEnvelopeEntry({ ...value, payload: '' }, 'one-field')).toEqual([
      'herald',
      '["i","s","e","o","t"]\n',
    ]);
    const one = (herald: string): Envelope => decodeEnvelopeFlat(['herald', herald]);
    expect(one('["i","s","e","o","t"]\n').payload).toBe('');
    expect(one('["i","s","e","o","t"]\n\n{"a":\n"b"}\n').payload).toBe('\n{"a":\n"b"}\n');
    expect(one('["i","s","e","o","t",null,"u",{"h":"é"}]\n🎉').headers).toEqual({ h: 'é' });
    // Neither layout: no payload field, no newline.
    expect(() => one('["i","s","e","o","t"]')).toThrow(/'payload': missing, and no newline/);
    expect(() => decodeEnvelopeEntry({ herald: '["i","s","e","o","t"]' })).toThrow(
      /'payload': missing/,
    );
    // The first newline ends the header: a header broken by one is not JSON.
    expect(() => one('["i",\n"s","e","o","t"]\n1')).toThrow(/not JSON/);
    expect(() => one('\n1')).toThrow(/not JSON/);
    expect(() => one('{}\n1')).toThrow(/not an array/);
    // A field besides `herald` and no `payload`: still one-field.
    expect(decodeEnvelopeFlat(['x', 'y', 'herald', '["i","s","e","o","t"]\n1']).payload).toBe('1');
  });

  it('lays an entry out compact (the default), one-field where it does not fit, and names the bad part', () => {
    const at = '2026-12-04T20:00:00.000Z';
    const value = { id: 'i', source: 's', event: 'e', payload: '1', origin: 'o', occurredAt: at };
    const ms = Date.parse(at);
    expect(encodeEnvelopeEntry(value)).toEqual(['herald', `~i s e o ${ms}\n1`]);
    expect(encodeEnvelopeEntry({ ...value, payload: 'a\nb\n' })).toEqual([
      'herald',
      `~i s e o ${ms}\na\nb\n`,
    ]);
    expect(decodeEnvelopeFlat(encodeEnvelopeEntry(value))).toEqual(value);
    expect(decodeEnvelopeFlat(['herald', `~i s e o ${ms}\n`]).payload).toBe('');
    // What the compact header cannot say goes as the JSON header, which the same readers read.
    for (const other of [
      { ...value, occurredAt: 't' },
      { ...value, occurredAt: '2026-12-04T20:00:00Z' },
      { ...value, occurredAt: '1969-12-31T23:59:59.999Z' },
      { ...value, source: 'a b' },
      { ...value, event: 'tab\t' },
      { ...value, origin: '' },
      { ...value, origin: '\ud800' },
      { ...value, id: 'a b' },
      { ...value, key: [1n] },
      { ...value, unique: 'u' },
      { ...value, headers: { h: 'v' } },
    ]) {
      const flat = encodeEnvelopeEntry(other);
      expect(flat).toEqual(encodeEnvelopeEntry(other, 'one-field'));
      expect(decodeEnvelopeFlat(flat)).toEqual(
        decodeEnvelopeFlat(encodeEnvelopeEntry(other, 'one-field')),
      );
    }
    const one = (herald: string): Envelope => decodeEnvelopeFlat(['herald', herald]);
    expect(() => one('~')).toThrow(/'herald': compact header: no id/);
    expect(() => one('~ s e o 1\n')).toThrow(/no id/);
    expect(() => one('~i\n')).toThrow(/no id/);
    expect(() => one('~i s e o 1')).toThrow(/no newline ends it/);
    expect(() => one('~i s e o\n1')).toThrow(/'s e o' is not 'source event origin milliseconds'/);
    expect(() => one('~i s e o 1 x\n1')).toThrow(/is not 'source event origin/);
    // A long line is named by its start, not echoed whole into the log and the dead letter.
    expect(() => one(`~i ${'s'.repeat(10_000)}\n`)).toThrow(/'s{120}…' is not 'source event/);
    expect(() => one('~i s  e o 1\n')).toThrow(/is not 'source event origin/);
    expect(() => one('~i s e o 1.5\n')).toThrow(/is not 'source event origin/);
    expect(() => one('~i s e o -1\n')).toThrow(/is not 'source event origin/);
    expect(() => one('~i s e\to 1\n')).toThrow(/is not 'source event origin/);
    expect(() => one('~i * e o 1\n')).toThrow(/pattern/);
    expect(() => one('~i s e o 8640000000000001\n')).toThrow(
      /time 8640000000000001 ms is out of range/,
    );
    expect(one('~i s e o 0\n').occurredAt).toBe('1970-01-01T00:00:00.000Z');
    // Neither layout's first character: read as a JSON header, refused.
    expect(() => one('i s e o 1\n')).toThrow(/not JSON/);
  });

  it.each([
    ['compact', encodeCompactParts],
    ['one-field', encodeEnvelopeParts],
  ] as const)(
    'writes through the publisher (values in parts) the very %s entry encodeEnvelopeEntry lays out, post after post',
    (layout, encodeParts) => {
      // Runs of posts sharing members (the text after the id kept) mixed with posts of their own.
      const shared = fc.constantFrom('orders', 'créé', 'a b', 'q"uote', '\ud800');
      const time = fc.constantFrom(
        '2026-12-04T20:00:00.000Z',
        '2026-12-04T20:00:00.001Z',
        '2026-12-04T20:00:00Z',
        't',
      );
      const post = fc.oneof(
        envelope,
        fc.record({
          id: fc.oneof(
            fc.uuid(),
            fc.string({ minLength: 1 }),
            fc.constantFrom('a b', 'a\nb', 'q"id', '~', '\ud800', 'é'),
          ),
          source: shared,
          event: shared,
          payload: fc.oneof(fc.string(), fc.constantFrom('', '\n', 'a\nb\n')),
          origin: fc.oneof(shared, fc.constant('')),
          occurredAt: time,
        }),
      );
      fc.assert(
        fc.property(fc.array(post, { minLength: 1, maxLength: 8 }), posts => {
          for (const value of posts) {
            // What the publisher writes: each value's parts one after the other.
            const written = encodeParts(value).map(v => (typeof v === 'string' ? v : v.join('')));
            expect(written).toEqual(encodeEnvelopeEntry(value, layout));
            // Read back as it was posted, whatever the layout: the same envelope.
            expect(decodeEnvelopeFlat(written)).toEqual(
              decodeEnvelopeFlat(encodeEnvelopeEntry(value, 'two-field')),
            );
          }
        }),
      );
    },
  );

  it('reads a run of compact headers sharing their members exactly as each read alone', () => {
    // The decoder reuses the members of the last compact header it read when the
    // next one differs only by its id: the result must never differ from a fresh read.
    const member = fc.oneof(
      fc.constantFrom('s', 'é', '🎉', 'a b', '', '*', 'x\n', '\u007f'),
      fc.string({ minLength: 1 }),
    );
    const ms = fc.oneof(
      fc.constantFrom('0', '1', '8640000000000000', '8640000000000001', 'x'),
      fc.nat().map(String),
    );
    const tail = fc.tuple(member, member, member, ms);
    const id = fc.oneof(fc.uuid(), member);
    /** The envelope a compact value means, by the grammar (not by the decoder's code). */
    const meaning = (postId: string, [source, event, origin, time]: string[]): unknown => {
      // eslint-disable-next-line no-control-regex -- the control characters are what the layout excludes
      const token = /^[^\u0000-\u0020\u007f]+$/;
      if (![postId, source, event, origin].every(t => token.test(t))) return 'refused';
      if (!/^\d{1,16}$/.test(time) || Number(time) > 8.64e15) return 'refused';
      if (source === '*' || event === '*') return 'refused';
      return {
        id: postId,
        source,
        event,
        origin,
        occurredAt: new Date(Number(time)).toISOString(),
        payload: 'p\nq',
      };
    };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(id, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 8 }),
        tail,
        tail,
        (posts, a, b) => {
          for (const [postId, which, json] of posts) {
            const members = which ? a : b;
            // A JSON header now and then: each layout keeps its own last members.
            if (json) decodeEnvelopeFlat(['herald', `["j","s","e","o","t"]\nx`]);
            const value = `~${postId} ${members.join(' ')}\np\nq`;
            const expected = meaning(postId, members);
            let actual: unknown;
            try {
              actual = decodeEnvelopeFlat(['herald', value]);
            } catch (error) {
              expect(error).toBeInstanceOf(StreamEntryError);
              actual = 'refused';
            }
            // A newline inside a member moves the payload: only the refusals are compared then.
            if (members.some(m => m.includes('\n')) || postId.includes('\n'))
              expect(actual === 'refused').toBe(expected === 'refused');
            else expect(actual).toEqual(expected);
          }
        },
      ),
    );
  });

  it('lays an entry out as two fields and names the bad part', () => {
    const flat = encodeEnvelopeEntry(
      { id: 'i', source: 's', event: 'e', payload: '1', origin: 'o', occurredAt: 't' },
      'two-field',
    );
    expect(flat).toEqual(['herald', '["i","s","e","o","t"]', 'payload', '1']);
    // With a payload field the herald field is the header alone, even with a newline in it.
    expect(
      decodeEnvelopeFlat(['herald', '["i",\n"s","e","o","t"]', 'payload', '1\n2']).payload,
    ).toBe('1\n2');
    const withMeta = encodeEnvelopeEntry(
      {
        id: 'i',
        source: 's',
        event: 'e',
        payload: '',
        origin: 'o',
        occurredAt: 't',
        unique: 'u',
      },
      'two-field',
    );
    expect(withMeta[1]).toBe('["i","s","e","o","t",null,"u",null]');
    const good = fieldsToRecord(flat);
    expect(decodeEnvelopeEntry(good).key).toBeUndefined();
    expect(() => decodeEnvelopeEntry({ payload: '1' })).toThrow(/'herald': missing/);
    expect(() => decodeEnvelopeEntry({ herald: good.herald })).toThrow(/'payload': missing/);
    expect(() => decodeEnvelopeEntry({ ...good, herald: '{' })).toThrow(/not JSON/);
    expect(() => decodeEnvelopeEntry({ ...good, herald: '{}' })).toThrow(/not an array/);
    expect(() => decodeEnvelopeEntry({ ...good, herald: '["i",""]' })).toThrow(/source is empty/);
    expect(() => decodeEnvelopeEntry({ ...good, herald: '["i","s","*","o","t"]' })).toThrow(
      /pattern/,
    );
    expect(() => decodeEnvelopeEntry({ ...good, herald: '["i","s","e",1,"t"]' })).toThrow(
      /origin is missing/,
    );
    expect(() => decodeEnvelopeEntry({ ...good, herald: '["i","s","e","o","t","1,x"]' })).toThrow(
      /not an int64/,
    );
    expect(() =>
      decodeEnvelopeEntry({ ...good, herald: `["i","s","e","o","t","${2n ** 63n}"]` }),
    ).toThrow(/int64 range/);
    expect(() => decodeEnvelopeEntry({ ...good, herald: '["i","s","e","o","t",null,7]' })).toThrow(
      /unique is not a string/,
    );
    expect(() =>
      decodeEnvelopeEntry({ ...good, herald: '["i","s","e","o","t",null,null,[1]]' }),
    ).toThrow(/headers is not an object/);
    expect(() =>
      decodeEnvelopeEntry({ ...good, herald: '["i","s","e","o","t",null,null,{"a":1}]' }),
    ).toThrow(/headers.a is not a string/);
  });

  it('reads a run of headers sharing their members exactly as JSON.parse reads each', () => {
    // The decoder reuses the members of the last header it parsed when the next
    // one differs only by its id: the result must never differ from a fresh parse.
    const tricky = ['plain', 'q"uote', 'back\\slash', 'tab\t', '\u0000', '\ud800', '🎉', 'é', ''];
    const member = fc.oneof(fc.constantFrom(...tricky), fc.string({ minLength: 1 }));
    const tail = fc.tuple(member, member, member, member);
    const id = fc.oneof(fc.uuid(), member);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(id, fc.nat(2)), { minLength: 1, maxLength: 8 }),
        tail,
        tail,
        (posts, a, b) => {
          for (const [postId, which] of posts) {
            const [source, event, origin, occurredAt] = which === 0 ? a : b;
            const text =
              which === 2
                ? `["${postId}",${JSON.stringify([source, event, origin, occurredAt]).slice(1)}`
                : JSON.stringify([postId, source, event, origin, occurredAt]);
            let expected: unknown;
            try {
              expected = decodeEnvelopeEntry({ herald: text, payload: 'p' });
            } catch (error) {
              expected = error;
            }
            // Both layouts, in turn: they share the members kept from the last header.
            for (const flat of [
              ['herald', text, 'payload', 'p'],
              ['herald', `${text}\np`],
            ]) {
              if (flat.length === 2 && text.includes('\n')) continue;
              let actual: unknown;
              try {
                actual = decodeEnvelopeFlat(flat);
              } catch (error) {
                actual = error;
              }
              if (expected instanceof Error) {
                expect(actual).toBeInstanceOf(StreamEntryError);
                expect((actual as Error).message).toBe(expected.message);
              } else {
                expect(actual).toEqual(expected);
                expect(actual).toEqual({
                  id: JSON.parse(text)[0],
                  source,
                  event,
                  origin,
                  occurredAt,
                  payload: 'p',
                  key: undefined,
                  unique: undefined,
                  headers: undefined,
                });
              }
            }
          }
        },
      ),
    );
  });

  it('checks the id of a header whose other members repeat the last one read', () => {
    const tail = '"s","e","o","t"]';
    expect(decodeEnvelopeFlat(['herald', `["a",${tail}`, 'payload', '']).id).toBe('a');
    // Same members, an id JSON refuses (a raw control character) or reads otherwise (an escape).
    expect(() => decodeEnvelopeFlat(['herald', `["a\tb",${tail}`, 'payload', ''])).toThrow(
      /not JSON/,
    );
    expect(decodeEnvelopeFlat(['herald', `["a\\u0041",${tail}`, 'payload', '']).id).toBe('aA');
    expect(() => decodeEnvelopeFlat(['herald', `["",${tail}`, 'payload', ''])).toThrow(
      /id is empty/,
    );
    expect(() => decodeEnvelopeFlat(['herald', `[1,${tail}`, 'payload', ''])).toThrow(
      /id is missing/,
    );
    // A header that only ends like the last one is read in full.
    expect(() => decodeEnvelopeFlat(['herald', `"a",${tail}`, 'payload', ''])).toThrow(
      /not JSON|not an array/,
    );
    // One field: the same checks, the header ending at the newline.
    expect(decodeEnvelopeFlat(['herald', `["b",${tail}\n"x"`]).id).toBe('b');
    expect(() => decodeEnvelopeFlat(['herald', `["a\tb",${tail}\n`])).toThrow(/not JSON/);
    expect(() => decodeEnvelopeFlat(['herald', `["",${tail}\n`])).toThrow(/id is empty/);
    // The id's closing quote past the newline (in the payload): read in full, refused.
    expect(() => decodeEnvelopeFlat(['herald', `["a\n",${tail}`])).toThrow(/not JSON/);
    // The kept members, then more before the newline: read in full, refused.
    expect(() => decodeEnvelopeFlat(['herald', `["a",${tail}x\n"x"`])).toThrow(/not JSON/);
    expect(decodeEnvelopeFlat(['herald', `["a\\u0041",${tail}\n`]).id).toBe('aA');
    // A header the newline cuts short of the kept members: not JSON.
    expect(() => decodeEnvelopeFlat(['herald', `["a",${tail.slice(0, -1)}\n]`])).toThrow(
      /not JSON/,
    );
  });
});
