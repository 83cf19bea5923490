import fc from 'fast-check';
import {
  StreamEntryError,
  decodeEnvelopeEntry,
  encodeEnvelopeEntry,
  fieldsToRecord,
} from '../../../../lib/redis/index.js';
import type { Envelope } from '../../../../lib/index.js';

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
  it('round-trips any envelope', () => {
    fc.assert(
      fc.property(envelope, value => {
        const decoded = decodeEnvelopeEntry(fieldsToRecord(encodeEnvelopeEntry(value)));
        expect(decoded).toEqual({
          ...value,
          key: value.key,
          unique: value.unique,
          headers: value.headers,
        });
      }),
    );
  });

  it('never throws anything but StreamEntryError on arbitrary fields', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom(
            'id',
            'source',
            'event',
            'payload',
            'origin',
            'occurred_at',
            'key',
            'headers',
            'x',
          ),
          fc.string(),
        ),
        fields => {
          try {
            decodeEnvelopeEntry(fields);
          } catch (error) {
            expect(error).toBeInstanceOf(StreamEntryError);
          }
        },
      ),
    );
  });

  it('names the bad field', () => {
    const good = fieldsToRecord(
      encodeEnvelopeEntry({
        id: 'i',
        source: 's',
        event: 'e',
        payload: '1',
        origin: 'o',
        occurredAt: 't',
      }),
    );
    expect(decodeEnvelopeEntry(good).key).toBeUndefined();
    const { source: _omit, ...noSource } = good;
    expect(() => decodeEnvelopeEntry(noSource)).toThrow(/'source': missing/);
    expect(() => decodeEnvelopeEntry({ ...good, event: '*' })).toThrow(StreamEntryError);
    expect(() => decodeEnvelopeEntry({ ...good, key: '1,x' })).toThrow(/'key'/);
    expect(() => decodeEnvelopeEntry({ ...good, key: String(2n ** 63n) })).toThrow(/int64 range/);
    expect(() => decodeEnvelopeEntry({ ...good, headers: '[1]' })).toThrow(/'headers'/);
    expect(() => decodeEnvelopeEntry({ ...good, headers: '{"a":1}' })).toThrow(/a is not a string/);
    expect(() => decodeEnvelopeEntry({ ...good, headers: '{' })).toThrow(/not JSON/);
  });
});
