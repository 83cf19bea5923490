import { SerializationError } from '../../../../lib/index.js';
import type { Envelope } from '../../../../lib/index.js';
import {
  decodeMainfluxEntry,
  encodeMainfluxEntry,
  mainfluxTime,
} from '../../../../lib/transports/redis/mainflux.layout.js';
import { StreamEntryError } from '../../../../lib/redis/index.js';

function envelope(data: unknown, extra: Partial<Envelope> = {}): Envelope {
  return {
    id: 'e1',
    source: 'mainflux.things',
    event: 'thing.create',
    payload: data === undefined ? '' : JSON.stringify(data),
    origin: 'o',
    occurredAt: '2024-01-02T03:04:05.120Z',
    ...extra,
  };
}

describe('mainflux layout', () => {
  it('writes operation first, strings as they are, other values as JSON, occurred_at as Go RFC3339Nano', () => {
    expect(
      encodeMainfluxEntry(envelope({ id: 't', meta: { a: [1] }, n: 1, b: false, z: null })),
    ).toEqual([
      'operation',
      'thing.create',
      'id',
      't',
      'meta',
      '{"a":[1]}',
      'n',
      '1',
      'b',
      'false',
      'z',
      'null',
      'occurred_at',
      '2024-01-02T03:04:05.12Z',
    ]);
    expect(encodeMainfluxEntry(envelope(undefined))).toEqual([
      'operation',
      'thing.create',
      'occurred_at',
      '2024-01-02T03:04:05.12Z',
    ]);
  });

  it.each([
    [envelope([1]), /object of fields; got an array/],
    [envelope('text'), /object of fields; got string/],
    [envelope({ operation: 'x' }), /'operation' is the event name/],
    [envelope({}, { unique: 'u' }), /no place for unique/],
    [envelope({}, { headers: { a: 'b' } }), /no place for headers/],
    [envelope({}, { payload: 'not json' }), /needs JSON payloads/],
  ])('refuses what the Go layout cannot carry (%#)', (input, message) => {
    expect(() => encodeMainfluxEntry(input)).toThrow(SerializationError);
    expect(() => encodeMainfluxEntry(input)).toThrow(message);
  });

  it('reads stream -> source, operation -> event, the other fields -> data, occurred_at byte-exact', () => {
    const read = decodeMainfluxEntry('mainflux.things', '1700000000000-3', [
      'id',
      't',
      'operation',
      'thing.remove',
      'occurred_at',
      '2024-01-02T03:04:05.100000000Z',
      '__proto__',
      'x',
    ]);
    expect(read).toMatchObject({
      id: 'mainflux.things@1700000000000-3',
      source: 'mainflux.things',
      event: 'thing.remove',
      occurredAt: '2024-01-02T03:04:05.100000000Z',
    });
    const data = JSON.parse(read.payload) as Record<string, string>;
    expect(data.occurred_at).toBe('2024-01-02T03:04:05.100000000Z');
    expect(Object.getOwnPropertyNames(data).sort()).toEqual(['__proto__', 'id', 'occurred_at']);
    expect(() => decodeMainfluxEntry('s', '1-0', ['id', 't'])).toThrow(StreamEntryError);
  });

  it('takes the envelope time from RFC 3339, UnixNano, or else the entry id', () => {
    expect(mainfluxTime('1704164645123456789')).toBe('2024-01-02T03:04:05.123Z');
    expect(mainfluxTime('2024-01-02T03:04:05Z')).toBe('2024-01-02T03:04:05Z');
    expect(mainfluxTime('yesterday')).toBeUndefined();
    expect(decodeMainfluxEntry('s', '1000-0', ['operation', 'o']).occurredAt).toBe(
      '1970-01-01T00:00:01.000Z',
    );
  });
});
