import { InvalidOptionsError } from '../../../../lib/index.js';
import { resolvePgDurableOptions } from '../../../../lib/transports/pg/pg.outbox.options.js';
import { resolvePgTransportOptions } from '../../../../lib/transports/pg/pg-transport.options.js';

describe('resolvePgDurableOptions', () => {
  it('is off for undefined and false, the defaults for true', () => {
    expect(resolvePgDurableOptions(undefined)).toBeUndefined();
    expect(resolvePgDurableOptions(false)).toBeUndefined();
    expect(resolvePgDurableOptions(true)).toEqual({
      consumer: undefined,
      table: 'herald_outbox',
      createTables: true,
      readBatch: 1000,
      maxInFlight: 2000,
      pollMs: 2000,
      maxAttempts: 5,
      retryDelayMs: 1000,
      consumerExpiryMs: 86_400_000,
      retentionMs: 86_400_000,
      retentionCount: 1_000_000,
      cleanupIntervalMs: 60_000,
    });
  });

  it('takes a consumer name and a schema-qualified table', () => {
    expect(
      resolvePgDurableOptions({ consumer: 'pod-7.eu:a', table: 'events.outbox' }),
    ).toMatchObject({ consumer: 'pod-7.eu:a', table: 'events.outbox' });
  });

  it.each([
    ['yes', /PgTransport: durable must be a boolean or an options object \(got "yes", a string\)/],
    [{ consumer: 'has space' }, /PgTransport durable: consumer must be a name matching/],
    [{ table: 'Outbox' }, /PgTransport durable: table must be a lower-case \[schema.\]table name/],
    [{ table: 'x'.repeat(54) }, /table must be a lower-case/],
    [
      { maxAttempts: 0 },
      /PgTransport durable: maxAttempts must be an integer >= 1 \(got 0, a number\)/,
    ],
    [{ retentionCount: 0 }, /retentionCount must be an integer >= 1/],
    [{ pollMs: -1 }, /pollMs must be a finite number > 0/],
    [{ createTables: 'no' }, /createTables must be a boolean/],
    [{ ackEvery: 1 }, /PgTransport durable: unknown option 'ackEvery'/],
  ])('refuses %p', (value, message) => {
    expect(() => resolvePgDurableOptions(value as never)).toThrow(InvalidOptionsError);
    expect(() => resolvePgDurableOptions(value as never)).toThrow(message);
  });

  it('is checked with the transport options', () => {
    expect(resolvePgTransportOptions({ durable: true }).durable?.table).toBe('herald_outbox');
    expect(() => resolvePgTransportOptions({ durable: { readBatch: 0 } })).toThrow(
      /readBatch must be an integer from 1 to 100000/,
    );
  });
});
