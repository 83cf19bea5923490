import {
  clusterReplyOf,
  isUndecodable,
  RedisClusterError,
  StreamEntryError,
  UndecodableEntryError,
} from '../../../../lib/transports/redis/redis.errors.js';
import {
  defaultRetryStrategy,
  isLoadingReplyError,
  isTransientReplyError,
} from '../../../../lib/transports/redis/redis.connection.js';
import { idAfter } from '../../../../lib/transports/redis/stream.subscriber.js';

describe('redis replies, classified', () => {
  it('names cluster replies and nothing else', () => {
    expect(clusterReplyOf(new Error('MOVED 3999 127.0.0.1:6381'))).toBe('MOVED');
    expect(clusterReplyOf(new Error('ASK 3999 127.0.0.1:6381'))).toBe('ASK');
    expect(clusterReplyOf(new Error('CLUSTERDOWN Hash slot not served'))).toBe('CLUSTERDOWN');
    expect(clusterReplyOf(new Error('CROSSSLOT Keys in request'))).toBe('CROSSSLOT');
    expect(clusterReplyOf(new Error('NOSCRIPT No matching script'))).toBeUndefined();
    const error = new RedisClusterError('MOVED', 'MOVED 1 h:1');
    expect(error.message).toMatch(/Redis Cluster/);
    expect(error.reply).toBe('MOVED');
  });

  it('tells undecodable entries from handler failures', () => {
    expect(isUndecodable(new StreamEntryError('herald', 'missing'))).toBe(true);
    expect(isUndecodable(new UndecodableEntryError('payload', 'bad'))).toBe(true);
    expect(isUndecodable(Object.assign(new SyntaxError('bad JSON'), { undecodable: true }))).toBe(
      true,
    );
    expect(isUndecodable(new SyntaxError('bad JSON'))).toBe(false);
    expect(isUndecodable(undefined)).toBe(false);
  });

  it('LOADING is transient and recognised; reconnection never waits more than 200 ms', () => {
    const loading = new Error('LOADING Redis is loading the dataset in memory');
    expect(isLoadingReplyError(loading)).toBe(true);
    expect(isTransientReplyError(loading)).toBe(true);
    expect(isLoadingReplyError(new Error('WRONGTYPE'))).toBe(false);
    expect([1, 2, 3, 4, 5, 50].map(defaultRetryStrategy)).toEqual([20, 40, 80, 160, 200, 200]);
  });

  it('orders stream ids numerically', () => {
    expect(idAfter('10-0', '9-0')).toBe(true);
    expect(idAfter('9-10', '9-9')).toBe(true);
    expect(idAfter('9-9', '9-9')).toBe(false);
    expect(idAfter('1-0', '0-0')).toBe(true);
    expect(idAfter('0-0', '1-0')).toBe(false);
  });
});
