import { InvalidOptionsError } from '../../../../lib/index.js';
import {
  checkClusterStream,
  hasHashTag,
  hashTagOf,
  keyInSlotOf,
} from '../../../../lib/transports/redis/redis.cluster.js';
import { StreamPublisher, RedisTransport } from '../../../../lib/redis/index.js';

describe('Redis Cluster hash tags', () => {
  it.each([
    ['{orders}', 'orders'],
    ['shop:{orders}:x', 'orders'],
    ['a{b}{c}', 'b'],
    ['{}x{y}', undefined],
    ['plain', undefined],
    ['open{only', undefined],
  ])('%s hashes on %s', (name, tag) => {
    expect(hashTagOf(name)).toBe(tag);
    expect(hasHashTag(name)).toBe(tag !== undefined);
  });

  it.each([
    ['orders', 'orders{orders}:g'],
    ['shop:{orders}:x', 'shop:{orders}:x:g'],
    ['{}x{y}', undefined],
    ['open{only', undefined],
    ['close}only', undefined],
  ])('keyInSlotOf(%s) is %s, hashed as the name is', (name, key) => {
    const made = keyInSlotOf(name, ':g');
    expect(made).toBe(key);
    // Redis Cluster hashes a key's tag, or the whole key without one.
    if (made !== undefined) expect(hashTagOf(made)).toBe(hashTagOf(name) ?? name);
  });

  it('refuses a name without a tag only in cluster mode, naming it', () => {
    expect(() => checkClusterStream('X', 'orders', {})).not.toThrow();
    expect(() => checkClusterStream('X', 'orders', { cluster: [] })).toThrow(InvalidOptionsError);
    expect(() => checkClusterStream('X', 'orders', { cluster: [] })).toThrow(
      /^X: stream must be a name with a hash tag in cluster mode, e.g. '\{orders\}'.*\(got "orders", a string\)$/,
    );
  });

  it('checks cluster, waitReplicas and waitTimeoutMs options', () => {
    expect(() => new RedisTransport({ cluster: [] as never, stream: '{a}' })).toThrow(
      /cluster must be a non-empty array of nodes or an ioredis Cluster/,
    );
    expect(() => new RedisTransport({ waitReplicas: -1 })).toThrow(
      /waitReplicas must be an integer >= 0/,
    );
    expect(() => new StreamPublisher({ stream: 's', waitTimeoutMs: 1.5 })).toThrow(
      /waitTimeoutMs must be an integer >= 0/,
    );
  });
});
