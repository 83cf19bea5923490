import { InvalidOptionsError } from '../../../lib/common/errors.js';
import { PgNotifyClient, PgNotifyServer } from '../../../lib/pg/microservice/index.js';
import { RedisStreamsClient, RedisStreamsServer } from '../../../lib/redis/microservice/index.js';

const PG = 'postgres://postgres@127.0.0.1:5432/test';

describe('microservice options', () => {
  it.each([
    ['startup', { startup: 'lazy' }],
    ['connectTimeoutMs', { connectTimeoutMs: 0 }],
    ['closeTimeoutMs', { closeTimeoutMs: -1 }],
  ])('servers refuse a bad %s with InvalidOptionsError', (_name, bad) => {
    expect(() => new RedisStreamsServer(bad as never)).toThrow(InvalidOptionsError);
    expect(() => new PgNotifyServer({ connectionString: PG, ...(bad as object) })).toThrow(
      InvalidOptionsError,
    );
  });

  it('PgNotifyServer refuses a claim table that is not a lower-case [schema.]table name', () => {
    expect(() => new PgNotifyServer({ connectionString: PG, claimTable: 'Claims; DROP' })).toThrow(
      InvalidOptionsError,
    );
  });

  it.each([
    ['requestTimeoutMs', { requestTimeoutMs: -1 }],
    ['connectTimeoutMs', { connectTimeoutMs: 0 }],
  ])('clients refuse a bad %s with InvalidOptionsError', (_name, bad) => {
    expect(() => new RedisStreamsClient(bad)).toThrow(InvalidOptionsError);
    expect(() => new PgNotifyClient({ connectionString: PG, ...bad })).toThrow(InvalidOptionsError);
  });

  it('unwrap() before listen()/connect() throws, as Nest transports do', () => {
    expect(() => new RedisStreamsServer().unwrap()).toThrow(/listen/);
    expect(() => new RedisStreamsClient().unwrap()).toThrow(/connect/);
  });
});

/** Each public options object: a wrong-typed value and an unknown key, each named. */
describe.each([
  {
    name: 'PgNotifyServer',
    make: (options: object) => new PgNotifyServer({ connectionString: PG, ...options }),
    wrongType: { closeTimeoutMs: '5000' },
    wrongTypeText:
      /PgNotifyServer: closeTimeoutMs must be a finite number >= 0 \(got "5000", a string\)/,
  },
  {
    name: 'PgNotifyClient',
    make: (options: object) => new PgNotifyClient({ connectionString: PG, ...options }),
    wrongType: { requestTimeoutMs: '300' },
    wrongTypeText:
      /PgNotifyClient: requestTimeoutMs must be a finite number >= 0 \(got "300", a string\)/,
  },
  {
    name: 'RedisStreamsServer',
    make: (options: object) => new RedisStreamsServer(options as never),
    wrongType: { concurrency: '4' },
    wrongTypeText: /RedisStreamsServer: concurrency must be an integer >= 1 \(got "4", a string\)/,
  },
  {
    name: 'RedisStreamsClient',
    make: (options: object) => new RedisStreamsClient(options as never),
    wrongType: { replyTtlMs: 500 },
    wrongTypeText:
      /RedisStreamsClient: replyTtlMs must be an integer >= 1000 \(got 500, a number\)/,
  },
])('$name options', ({ name, make, wrongType, wrongTypeText }) => {
  it('refuse a wrong-typed value with InvalidOptionsError naming option, rule and value', () => {
    expect(() => make(wrongType)).toThrow(InvalidOptionsError);
    expect(() => make(wrongType)).toThrow(wrongTypeText);
  });

  it('refuse an unknown key with InvalidOptionsError naming it', () => {
    expect(() => make({ retryAttempts: 3 })).toThrow(InvalidOptionsError);
    expect(() => make({ retryAttempts: 3 })).toThrow(
      new RegExp(`${name}: unknown option 'retryAttempts'`),
    );
  });

  it('refuse a logger without the methods it needs', () => {
    expect(() => make({ logger: { log: 1 } })).toThrow(/logger must be an object with log\(\)/);
  });
});

describe('options that were checked late or not at all', () => {
  it('RedisStreamsServer checks groupOptions at construction (not at listen), unknown keys too', () => {
    expect(() => new RedisStreamsServer({ groupOptions: { minIdleMs: -5 } })).toThrow(
      /groupOptions: minIdleMs must be a finite number > 0 \(got -5, a number\)/,
    );
    expect(() => new RedisStreamsServer({ groupOptions: { name: 'g' } as never })).toThrow(
      /groupOptions: unknown option 'name'/,
    );
  });

  it('pg servers and clients check the options of the hub they make, in their own words', () => {
    expect(() => new PgNotifyServer({ connectionString: PG, heartbeatMs: 0 })).toThrow(
      /PgNotifyServer: heartbeatMs must be a finite number > 0 \(got 0, a number\)/,
    );
    expect(() => new PgNotifyClient({})).toThrow(InvalidOptionsError);
    expect(() => new PgNotifyClient({})).toThrow(
      /PgNotifyClient: hub must be given, or a pool, a connectionString or a poolConfig/,
    );
  });

  it('an event-emitter habit gets a pointer to the migration notes', () => {
    expect(() => new RedisStreamsServer({ wildcard: true } as never)).toThrow(
      /Coming from @nestjs\/event-emitter/,
    );
  });
});
