import { InvalidOptionsError } from '../../../../lib/index.js';
import { PgHub, PgTransport } from '../../../../lib/pg/index.js';
import { resolvePgHubOptions } from '../../../../lib/transports/pg/pg.options.js';
import { resolvePgTransportOptions } from '../../../../lib/transports/pg/pg-transport.options.js';

const URL = 'postgres://nobody@127.0.0.1:1/none';

describe('resolvePgHubOptions', () => {
  it('applies the defaults: 5 s heartbeat answered within 3 s', () => {
    const resolved = resolvePgHubOptions({ connectionString: URL });
    expect(resolved).toMatchObject({
      name: 'pg-hub',
      heartbeatMs: 5000,
      heartbeatTimeoutMs: 3000,
      poolSize: 3,
      maxQueue: 10_240,
      batchSize: 1000,
      maxPayloadBytes: 7999,
    });
    expect(
      resolvePgHubOptions({ connectionString: URL, heartbeatMs: 1000 }).heartbeatTimeoutMs,
    ).toBe(1000);
  });

  it.each([
    [
      { heartbeatMs: '100' },
      /PgHub: heartbeatMs must be a finite number > 0 \(got "100", a string\)/,
    ],
    [{ poolSize: 0 }, /PgHub: poolSize must be an integer >= 1 \(got 0, a number\)/],
    [{ maxQueue: 1.5 }, /maxQueue must be an integer >= 1 \(got 1.5, a number\)/],
    [{ heartbeatTimeoutMs: -1 }, /heartbeatTimeoutMs must be a finite number > 0 \(got -1/],
    [{ name: 3 }, /name must be a non-empty string \(got 3, a number\)/],
    [{ wildcard: true }, /PgHub: unknown option 'wildcard'/],
    [{ channel: 'x' }, /PgHub: unknown option 'channel'/],
  ])('refuses %j with InvalidOptionsError naming it', (bad, message) => {
    const call = () => resolvePgHubOptions({ connectionString: URL, ...bad } as never);
    expect(call).toThrow(InvalidOptionsError);
    expect(call).toThrow(message);
  });

  it('needs a pool, a connectionString or a poolConfig', () => {
    expect(() => resolvePgHubOptions({})).toThrow(InvalidOptionsError);
    expect(() => new PgHub()).toThrow(/PgHub: options must be given a pool/);
  });

  it('is what the PgHub constructor runs', () => {
    expect(() => new PgHub({ connectionString: URL, batchSize: 0 })).toThrow(InvalidOptionsError);
  });

  it("names what a consumer's hook was when it is not a function", async () => {
    const hub = new PgHub({ connectionString: URL });
    expect(() => hub.consumer('orders' as never, 'topic')).toThrow(
      /PgHub: a consumer's hook must be a function \(got "orders", a string\)/,
    );
    await hub.stop();
  });
});

describe('resolvePgTransportOptions', () => {
  it('keeps its own options and passes the hub options on', () => {
    const resolved = resolvePgTransportOptions({
      connectionString: URL,
      channel: 'events',
      topics: ['orders', 'events', 'orders'],
      poolSize: 2,
    });
    expect(resolved).toMatchObject({
      channel: 'events',
      topics: ['orders'],
      uniqueTable: 'herald_unique',
      claimTimeoutMs: 5000,
      maxPendingClaims: 10_000,
      hubOptions: { connectionString: URL, poolSize: 2 },
    });
    expect(resolved.hubOptions).not.toHaveProperty('channel');
  });

  it.each([
    [
      { maxPendingClaims: '5' },
      /PgTransport: maxPendingClaims must be an integer >= 1 \(got "5", a string\)/,
    ],
    [{ claimTimeoutMs: 0 }, /claimTimeoutMs must be a finite number > 0 \(got 0, a number\)/],
    [
      { uniqueTable: 'a;drop' },
      /uniqueTable must be a lower-case \[schema.\]table name \(got "a;drop"/,
    ],
    [{ topics: 'orders' }, /topics must be an array of topics \(got "orders", a string\)/],
    [{ hub: {} }, /hub must be a PgHub/],
    [{ maxListeners: 10 }, /PgTransport: unknown option 'maxListeners'.*@nestjs\/event-emitter/],
  ])('refuses %j with InvalidOptionsError naming it', (bad, message) => {
    const call = () => new PgTransport({ connectionString: URL, ...bad } as never);
    expect(call).toThrow(InvalidOptionsError);
    expect(call).toThrow(message);
  });
});
