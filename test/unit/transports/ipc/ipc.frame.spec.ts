import fc from 'fast-check';
import type { Envelope } from '../../../../lib/index.js';
import {
  decodeEventBody,
  describeEventBody,
  encodeEventBody,
  scanEventBody,
} from '../../../../lib/transports/ipc/ipc.codec.js';
import { IpcProtocolError } from '../../../../lib/transports/ipc/ipc.errors.js';
import {
  BodyReader,
  ByteSlab,
  FrameReader,
  FrameWriter,
} from '../../../../lib/transports/ipc/ipc.frame.js';

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const envelopeArb: fc.Arbitrary<Envelope> = fc.record(
  {
    id: fc.uuid(),
    source: fc.string({ minLength: 1 }),
    event: fc.string({ minLength: 1 }),
    payload: fc.oneof(fc.constant(''), fc.json(), fc.string({ unit: 'grapheme' })),
    key: fc.array(int64, { maxLength: 5 }),
    unique: fc.string({ minLength: 1 }),
    origin: fc.string(),
    occurredAt: fc.date({ noInvalidDate: true }).map(d => d.toISOString()),
    headers: fc.dictionary(fc.string(), fc.string()),
  },
  { requiredKeys: ['id', 'source', 'event', 'payload', 'origin', 'occurredAt'] },
);

function encode(envelope: Envelope): Buffer {
  const w = new FrameWriter();
  encodeEventBody(w, envelope);
  return w.take();
}

describe('ipc frames and event bodies', () => {
  it('round-trips any envelope, and the broker scan finds its unique key', () => {
    fc.assert(
      fc.property(envelopeArb, envelope => {
        const body = encode(envelope);
        const decoded = decodeEventBody(new BodyReader().reset(body, 0, body.length));
        expect(decoded).toEqual({
          key: undefined,
          unique: undefined,
          headers: undefined,
          ...envelope,
        });
        const scan = scanEventBody(new BodyReader().reset(body, 0, body.length), {
          unique: undefined,
          payloadBytes: 0,
        });
        expect(scan.unique).toBe(envelope.unique);
        expect(scan.payloadBytes).toBe(Buffer.byteLength(envelope.payload));
      }),
    );
  });

  it('keeps an empty key apart from no key', () => {
    const base = { id: 'i', source: 's', event: 'e', payload: '', origin: 'o', occurredAt: 't' };
    const body = encode({ ...base, key: [] });
    expect(decodeEventBody(new BodyReader().reset(body, 0, body.length)).key).toEqual([]);
  });

  it('throws only IpcProtocolError for any bytes given as a body', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), bytes => {
        const buf = Buffer.from(bytes);
        for (const read of [
          () => decodeEventBody(new BodyReader().reset(buf, 0, buf.length)),
          () =>
            scanEventBody(new BodyReader().reset(buf, 0, buf.length), {
              unique: undefined,
              payloadBytes: 0,
            }),
        ]) {
          try {
            read();
          } catch (error) {
            expect(error).toBeInstanceOf(IpcProtocolError);
          }
        }
        expect(typeof describeEventBody(buf)).toBe('string');
      }),
    );
  });

  it('finds frames across any split of the stream into chunks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string(), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (texts, cuts) => {
          const w = new FrameWriter();
          for (const text of texts) {
            w.begin(9);
            w.str(text);
            w.end();
          }
          const stream = w.take();
          const points = [...new Set(cuts.map(c => c % (stream.length + 1)))].sort((a, b) => a - b);
          const reader = new FrameReader(1 << 20);
          const got: string[] = [];
          let last = 0;
          for (const point of [...points, stream.length]) {
            reader.push(stream.subarray(last, point));
            last = point;
            while (reader.next()) {
              expect(reader.type).toBe(9);
              got.push(new BodyReader().reset(reader.buf, reader.start, reader.end).str('text'));
              reader.consume();
            }
          }
          expect(got).toEqual(texts);
          expect(reader.buffered).toBe(0);
        },
      ),
    );
  });

  it('refuses a frame longer than the limit from its header, before buffering it', () => {
    const reader = new FrameReader(100);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(101);
    reader.push(header);
    expect(() => reader.next()).toThrow('frame of 101 bytes exceeds the limit of 100 bytes');
    const zero = new FrameReader(100);
    zero.push(Buffer.alloc(4));
    expect(() => zero.next()).toThrow(IpcProtocolError);
  });

  it('checks every field length against the end of its frame', () => {
    const w = new FrameWriter();
    w.str('hello');
    const buf = w.take();
    expect(() => new BodyReader().reset(buf, 0, buf.length - 1).str('greeting')).toThrow(
      'frame ends inside greeting',
    );
    expect(() => new BodyReader().reset(buf, 0, 2).u48('seq')).toThrow(IpcProtocolError);
    const r = new BodyReader().reset(buf, 0, buf.length);
    r.u8('x');
    expect(() => r.done('thing')).toThrow('unexpected byte(s) after thing');
  });

  it('drops a frame found too big with truncate, keeping the ones before', () => {
    const w = new FrameWriter();
    w.begin(1);
    w.u8(7);
    w.end();
    const mark = w.length;
    w.begin(2);
    w.str('x'.repeat(100_000));
    w.end();
    w.truncate(mark);
    const out = w.take();
    expect(out.length).toBe(6);
    expect(out.readUInt32BE(0)).toBe(2);
  });
});

describe('ByteSlab', () => {
  it('copies ranges that stay intact while later copies fill the slab', () => {
    const slab = new ByteSlab();
    const source = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    const copies: [Buffer, number, number][] = [];
    for (let start = 0; start + 7 < 5000; start += 7) {
      const end = Math.min(5000, start + 1 + ((start * 13) % 3000));
      copies.push([slab.copy(source, start, end), start, end]);
    }
    source.fill(0);
    const original = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    for (const [copy, start, end] of copies)
      expect(copy.equals(original.subarray(start, end))).toBe(true);
  });
});
