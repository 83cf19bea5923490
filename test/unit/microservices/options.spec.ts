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
