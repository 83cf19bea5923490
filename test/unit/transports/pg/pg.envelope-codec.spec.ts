import type { Envelope } from '../../../../lib/interfaces/envelope.interface.js';
import { splitPayload } from '../../../../lib/pg/index.js';
import { PgEnvelopeCodec } from '../../../../lib/transports/pg/pg.envelope-codec.js';
import { payloadText, PgPlainHeadParts } from '../../../../lib/transports/pg/pg.packed-payloads.js';

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

  it('decodes its own values through the scan exactly as the general parse reads them', () => {
    const base: Envelope = {
      id: 'id-1',
      source: 'orders',
      event: 'created',
      payload: '{"n":1}',
      origin: 'host/1/abc',
      occurredAt: '2026-01-01T00:00:00.000Z',
    };
    const cases: Envelope[] = [
      base,
      { ...base, payload: '' },
      { ...base, unique: 'job-1', payload: '[1,"x"]' },
      { ...base, key: [3n] },
      // Escaped meta strings and headers take the general path: same result.
      { ...base, id: 'a"b\\c\n', source: 'é $', event: 'x\u0001' },
      { ...base, headers: { traceparent: '00-1' } },
      { ...base, payload: String.raw`{"s":"caf\u00e9 $1","e":"\\\""}` },
    ];
    for (const envelope of cases) {
      const decoded = codec.decode(raw(codec.encode(envelope)));
      expect(decoded).toEqual({ ...envelope, payload: decoded!.payload });
      // The data's text is escaped to pure ASCII: the same value.
      expect(decoded!.payload === '' ? '' : JSON.parse(decoded!.payload)).toEqual(
        envelope.payload === '' ? '' : JSON.parse(envelope.payload),
      );
    }
    // The earlier tests' foreign event and bad value; nothing here.
    expect(codec.counters).toEqual({ foreign: 1, decodeErrors: 1 });
  });

  it('escapes every part it writes: pure ASCII without `$`, also from its caches', () => {
    const envelope: Envelope = {
      id: 'ü$',
      source: 'ß',
      event: '$',
      payload: '"€$"',
      unique: 'ö',
      origin: 'hôte/1/x',
      occurredAt: 'à',
      headers: { ä: '$' },
    };
    for (let i = 0; i < 2; i++) {
      const payload = codec.encode(envelope);
      expect(payload).toMatch(/^[\x20-\x23\x25-\x7e]+$/);
      const decoded = codec.decode(raw(payload));
      expect(decoded).toEqual({ ...envelope, payload: '"\\u20ac\\u0024"' });
      expect(JSON.parse(decoded!.payload)).toBe('€$');
    }
  });

  it('keeps its per-name cache bounded and follows an origin that changes', () => {
    const own = new PgEnvelopeCodec(
      () => undefined,
      () => undefined,
    );
    // Past 1024 names with one origin (the cache starts afresh), then a new origin.
    const wrong: number[] = [];
    for (let i = 0; i < 2400; i++) {
      const envelope: Envelope = {
        id: `i${i}`,
        source: `s${i % 1100}`,
        event: 'e',
        payload: '1',
        origin: `o${Math.floor(i / 1200)}`,
        occurredAt: `t${i % 3}`,
      };
      const decoded = own.decode(raw(own.encode(envelope)));
      if (JSON.stringify(decoded) !== JSON.stringify(envelope)) wrong.push(i);
    }
    expect(wrong).toEqual([]);
    expect(own.counters).toEqual({ foreign: 0, decodeErrors: 0 });
  });

  it('refuses in the scan what JSON refuses or the envelope forbids, as the general parse does', () => {
    const own = new PgEnvelopeCodec(
      () => undefined,
      () => ({ now: () => 0 }) as never,
    );
    // A raw control character in a meta string: not JSON.
    const control =
      'e:{"herald":1,"id":"a\u0001","source":"s","event":"e","origin":"o","at":"t","data":1}';
    expect(own.decode(raw(control.replace('\\u0001', '\u0001')))).toBeUndefined();
    expect(own.counters.decodeErrors).toBe(1);
    // Source `*`: not a herald envelope, a plain event of the channel.
    const star = 'e:{"herald":1,"id":"x","source":"*","event":"e","origin":"o","at":"t"}';
    expect(own.decode(raw(star))).toMatchObject({ source: 'herald', event: 'notify' });
    // Data not closed: not JSON.
    expect(
      own.decode(
        raw('e:{"herald":1,"id":"x","source":"s","event":"e","origin":"o","at":"t","data":1 '),
      ),
    ).toBeUndefined();
    expect(own.counters).toEqual({ foreign: 1, decodeErrors: 2 });
  });
  it('writes and reads bursts through its caches exactly as member by member and as a fresh codec', () => {
    const own = new PgEnvelopeCodec(
      () => undefined,
      () => undefined,
    );
    const base: Envelope = {
      id: '9b2f3c1e-8d4a-4f6b-a1c2-3d4e5f607100',
      source: 'orders',
      event: 'created',
      payload: '{"n":1}',
      origin: 'host/1/abc/1',
      occurredAt: '2026-01-01T00:00:00.000Z',
    };
    const burst: Envelope[] = [
      base,
      { ...base, id: '9b2f3c1e-8d4a-4f6b-a1c2-3d4e5f607101' },
      { ...base, id: 'x', occurredAt: '2026-01-01T00:00:00.001Z' },
      { ...base, id: 'a"b' },
      { ...base, id: 'a$b', payload: '"é"' },
      { ...base, id: '', payload: '' },
      { ...base, unique: 'u' },
      { ...base, event: 'paid' },
      { ...base, event: 'paid', occurredAt: '' },
      { ...base, event: 'paid', occurredAt: 'a"t' },
      { ...base, origin: 'host/2/def/1' },
      { ...base, key: [5n] },
      { ...base, headers: { h: 'v' } },
      base,
    ];
    for (const envelope of burst) {
      const text = own.encode(envelope);
      // The wire format: the general JSON writer's text, escaped, data last.
      const { payload, key, unique, headers } = envelope;
      const meta = JSON.stringify({
        herald: 1,
        id: envelope.id,
        source: envelope.source,
        event: envelope.event,
        origin: envelope.origin,
        at: envelope.occurredAt,
        ...(unique === undefined ? {} : { unique }),
        ...(headers === undefined ? {} : { headers }),
      });
      const json = payload === '' ? meta : meta.slice(0, -1) + ',"data":' + payload + '}';
      const escaped = json.replace(
        /[$\u0080-\uffff]/g,
        c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
      );
      expect(text).toBe((key === undefined ? 'e' : 'e' + key.join(',')) + ':' + escaped);
      const fresh = new PgEnvelopeCodec(
        () => undefined,
        () => undefined,
      ).decode(raw(text));
      // Three times: from the second value in a row of one sender and event
      // on, decode() reads by the expression's test and the last middle.
      for (let i = 0; i < 3; i++) {
        const decoded = own.decode(raw(text));
        expect(decoded).toEqual({ ...envelope, payload: decoded!.payload });
        expect(decoded).toEqual(fresh);
      }
    }
    // Not repeating what was read last: a value cut short, another member order, a control character.
    expect(own.decode(raw(own.encode(base).slice(0, -2)))).toBeUndefined();
    const reordered =
      'e:{"herald":1,"id":"i","event":"created","source":"orders","origin":"host/1/abc/1","at":"t","data":2}';
    expect(own.decode(raw(reordered))).toMatchObject({ id: 'i', source: 'orders', payload: '2' });
    const control = own.encode({ ...base, id: 'c' }).replace('"c"', '"c\u0001"');
    expect(own.decode(raw(control))).toBeUndefined();
    expect(own.counters).toEqual({ foreign: 0, decodeErrors: 2 });
  });

  it('writes in parts exactly the text of encode(), pure ASCII, the data part the escaped data text', () => {
    const own = new PgEnvelopeCodec(
      () => undefined,
      () => undefined,
    );
    const base: Envelope = {
      id: 'a-1',
      source: 'orders',
      event: 'created',
      payload: '{"s":"' + 'x'.repeat(4000) + '"}',
      origin: 'host:1',
      occurredAt: '2026-01-01T00:00:00.000Z',
    };
    const cases: Envelope[] = [
      base,
      { ...base, payload: '"€$😀"' },
      { ...base, id: 'ü"' },
      { ...base, key: [1n] },
      { ...base, unique: 'u' },
      { ...base, headers: { h: 'v' } },
      { ...base, payload: '' },
    ];
    for (const envelope of cases)
      for (let i = 0; i < 2; i++) {
        const parts = own.encodeParts(envelope);
        const text = typeof parts === 'string' ? parts : parts.head + parts.data + '}';
        expect(text).toBe(own.encode(envelope));
        expect(text).toMatch(/^[\x20-\x23\x25-\x7e]+$/);
        if (typeof parts !== 'string') expect(own.decode(raw(text))?.payload).toBe(parts.data);
      }
    expect(own.encodeParts(base)).toBeInstanceOf(PgPlainHeadParts);
    // The plain head is written unscanned: whatever source, event or origin
    // it was made from, it is printable ASCII (no separator, nothing beyond).
    for (const odd of ['\u001e', 'é€😀', '$', '"\\', '\u0000\u007f'])
      for (const member of ['source', 'event', 'origin'] as const) {
        const parts = own.encodeParts({ ...base, [member]: `a${odd}b` });
        expect(parts).toBeInstanceOf(PgPlainHeadParts);
        expect((parts as PgPlainHeadParts).head).toMatch(/^[\x20-\x23\x25-\x7f]+$/);
        expect(own.decode(raw(payloadText(parts)))?.[member]).toBe(`a${odd}b`);
      }
    expect((own.encodeParts(base) as { data: string }).data).toBe(base.payload);
  });
});
