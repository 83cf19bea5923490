import { InvalidOptionsError } from '../../../../lib/index.js';
import {
  EmptyStreamError,
  EmptySubscriberNameError,
  RedisTransport,
  StreamPublisher,
  StreamSubscriber,
} from '../../../../lib/redis/index.js';
import { createTransport } from '../../../../lib/transports/create-transport.js';

describe('redis options are validated at the boundary', () => {
  it('publisher: stream required, numbers in range', () => {
    expect(() => new StreamPublisher({ stream: '' })).toThrow(EmptyStreamError);
    expect(() => new StreamPublisher(undefined as never)).toThrow(EmptyStreamError);
    expect(() => new StreamPublisher({ stream: 's', bufferSize: 0 })).toThrow(InvalidOptionsError);
    expect(() => new StreamPublisher({ stream: 's', maxLen: -1 })).toThrow(/maxLen/);
    expect(() => new StreamPublisher({ stream: 's', drainInitialIntervalMs: NaN })).toThrow(
      /drainInitialIntervalMs/,
    );
  });

  it('subscriber: name and stream required (the original errors), group settings checked', () => {
    expect(() => new StreamSubscriber({ stream: '', name: 'n' })).toThrow(EmptyStreamError);
    expect(() => new StreamSubscriber({ stream: 's', name: '' })).toThrow(EmptySubscriberNameError);
    expect(() => new StreamSubscriber({ stream: 's', name: 'n', count: 0 })).toThrow(/count/);
    expect(
      () =>
        new StreamSubscriber({
          stream: 's',
          name: 'n',
          group: { minIdleMs: 1000, handlerTimeoutMs: 1000 },
        }),
    ).toThrow(/must exceed group.handlerTimeoutMs/);
    expect(() => new StreamSubscriber({ stream: 's', name: 'n', group: { name: '' } })).toThrow(
      /group name/,
    );
  });

  it('transport: mode, group and instance checked; createTransport builds it lazily', async () => {
    expect(() => new RedisTransport({ mode: 'fanout' as never })).toThrow(InvalidOptionsError);
    expect(() => new RedisTransport({ stream: '' })).toThrow(InvalidOptionsError);
    expect(() => new RedisTransport({ group: '' })).toThrow(InvalidOptionsError);
    expect(() => new RedisTransport({ instance: '' })).toThrow(InvalidOptionsError);
    const transport = await createTransport({
      transport: 'redis',
      redis: { stream: 's', mode: 'work-queue' },
    });
    expect(transport).toBeInstanceOf(RedisTransport);
    expect(transport.features).toMatchObject({
      guarantee: 'at-least-once',
      redelivers: true,
      reach: 'network',
    });
    expect((transport as RedisTransport).groupName).toBe('herald');
    expect(new RedisTransport({ instance: 'pod-1' }).groupName).toBe('herald:pod-1');
  });
});
