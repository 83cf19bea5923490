import type { Envelope } from '../../../../lib/interfaces/envelope.interface.js';
import { splitPayload } from '../../../../lib/pg/index.js';
import { PgEnvelopeCodec } from '../../../../lib/transports/pg/pg.envelope-codec.js';

describe('PgEnvelopeCodec', () => {
  const warnings: string[] = [];
  const codec = new PgEnvelopeCodec(
    () => ({ log: () => undefined, warn: m => void warnings.push(m), error: () => undefined }),
    () => ({ now: () => 0 }) as never,
  );
  const raw = (payload: string, topic = 'herald') => {
    const { key, json } = splitPayload(payload);
    return { topic, key, json, processId: 42 };
  };

  it('round-trips an envelope with key, unique and headers, the data text untouched', () => {
    const envelope: Envelope = {
      id: 'id-1',
      source: 'orders',
      event: 'created',
      payload: '{"n":1,"data":"x"}',
      key: [1n, -2n],
      unique: 'u-1',
      origin: 'host:1',
      occurredAt: '2026-01-01T00:00:00.000Z',
      headers: { data: ',"data":' },
    };
    const payload = codec.encode(envelope);
    expect(payload.startsWith('e1,-2:{"herald":1,')).toBe(true);
    expect(codec.decode(raw(payload))).toEqual(envelope);
  });

  it('turns a plain pg-hub event into an envelope of its channel, event = value.op', () => {
    const decoded = codec.decode(raw('e7:{"op":"insert","id":3}', 'orders'));
    expect(decoded).toMatchObject({
      source: 'orders',
      event: 'insert',
      payload: '{"op":"insert","id":3}',
      key: [7n],
      origin: 'pg:42',
      occurredAt: '1970-01-01T00:00:00.000Z',
    });
    expect(codec.counters.foreign).toBe(1);
  });

  it('counts and logs a value that is not JSON', () => {
    expect(codec.decode(raw('e:{"herald":1,"id":'))).toBeUndefined();
    expect(codec.counters.decodeErrors).toBe(1);
    expect(warnings[0]).toMatch(
      /^pg notification-bad-json: dropped a notification whose value is not JSON: .*\[channel=herald pid=42\]$/,
    );
  });
});
