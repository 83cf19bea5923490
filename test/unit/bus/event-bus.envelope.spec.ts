import { EnvelopeFactory, validName } from '../../../lib/bus/event-bus.envelope.js';
import {
  InvalidEventError,
  PayloadTooLargeError,
  SerializationError,
  jsonCodec,
  systemClock,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

describe('EnvelopeFactory', () => {
  let now = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
  const clock = { now: () => now };
  const factory = new EnvelopeFactory(jsonCodec, 'host:1:a', clock, 32);

  it('builds a validated envelope with the encoded payload, key as bigints and copied headers', () => {
    const headers = { traceparent: 't' };
    const envelope = factory.envelope('orders', 'created', { n: 1 }, { key: [1, 2n], headers });
    expect(envelope).toMatchObject({
      source: 'orders',
      event: 'created',
      payload: '{"n":1}',
      key: [1n, 2n],
      origin: 'host:1:a',
      occurredAt: '2026-01-02T03:04:05.006Z',
      headers: { traceparent: 't' },
    });
    expect(envelope.headers).not.toBe(headers);
    expect(envelope.id).toMatch(/^[0-9a-f-]{36}$/);
    now += 1;
    expect(factory.envelope('a', 'b').occurredAt).toBe('2026-01-02T03:04:05.007Z');
  });

  it('refuses bad names, keys, headers, unique and data with typed errors', () => {
    expect(() => factory.envelope('', 'x')).toThrow(InvalidEventError);
    expect(() => factory.envelope('*', 'x')).toThrow("source '*' is a pattern");
    expect(() => factory.envelope('a', 'x', 1, { key: [1.5] })).toThrow('key[0] must be an int64');
    expect(() => factory.envelope('a', 'x', 1, { key: [2n ** 63n] })).toThrow(InvalidEventError);
    expect(() => factory.envelope('a', 'x', 1, { headers: { n: 1 as never } })).toThrow(
      'headers.n must be a string',
    );
    expect(() => factory.envelope('a', 'x', 1, { unique: '' })).toThrow(InvalidEventError);
    expect(() => factory.envelope('a', 'x', NaN)).toThrow(SerializationError);
    expect(() => validName(7, 'event')).toThrow('event must be a non-empty string');
  });

  it('checks the payload limit in bytes, not characters', () => {
    expect(() => factory.envelope('a', 'x', 'x'.repeat(40))).toThrow(PayloadTooLargeError);
    expect(() => factory.envelope('a', 'x', 'é'.repeat(16))).toThrow(PayloadTooLargeError);
    expect(factory.envelope('a', 'x', 'é'.repeat(10)).payload).toBe(`"${'é'.repeat(10)}"`);
  });

  it('makes local events with the very object and received events with decoded data', () => {
    const data = { big: 1n };
    const local = factory.local('a', 'b', data);
    expect(local.data).toBe(data);
    expect(local).toMatchObject({ local: true, attempt: 1, headers: {} });
    const envelope = factory.envelope('a', 'b', { n: 2 });
    expect(factory.received(envelope, 3)).toMatchObject({
      id: envelope.id,
      data: { n: 2 },
      local: false,
      attempt: 3,
    });
    expect(() => factory.received({ ...envelope, payload: '{' }, 1)).toThrow();
  });

  it('leaves the optional fields out of an option-less envelope and of the event received for it', () => {
    const envelope = factory.envelope('a', 'b', { n: 2 });
    expect(Object.keys(envelope)).toEqual([
      'id',
      'source',
      'event',
      'payload',
      'origin',
      'occurredAt',
    ]);
    // The received event has a local event's fields, in its order.
    const received = factory.received(envelope, 1);
    expect(Object.keys(received)).toEqual(Object.keys(factory.local('a', 'b', { n: 2 })));
    expect(received).toMatchObject({ headers: {}, local: false, attempt: 1 });
    const keyed = factory.envelope('a', 'b', 1, { key: [7], unique: 'u-1' });
    expect(factory.received(keyed, 2)).toMatchObject({ key: [7n], unique: 'u-1', attempt: 2 });
    const onlyUnique = factory.received({ ...envelope, unique: 'u-2' }, 1);
    expect(onlyUnique.unique).toBe('u-2');
    expect(onlyUnique.key).toBeUndefined();
  });

  it('on the system clock, one reading serves a synchronous run of posts, and a new turn reads again', async () => {
    const system = new EnvelopeFactory(jsonCodec, 'host:1:a', systemClock, undefined);
    const first = system.envelope('a', 'b').occurredAt;
    for (let i = 0; i < 100; i++) expect(system.envelope('a', 'b').occurredAt).toBe(first);
    // Each poll is a new turn: the clock is read again and moves on.
    await waitFor(() => system.envelope('a', 'b').occurredAt > first);
  });
});
