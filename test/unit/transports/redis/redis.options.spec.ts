import { InvalidOptionsError } from '../../../../lib/index.js';
import { resolveRedisTransportOptions } from '../../../../lib/transports/redis/redis.options.js';
import { resolveStreamPublisherOptions } from '../../../../lib/transports/redis/stream.publisher.options.js';
import { resolveStreamSubscriberOptions } from '../../../../lib/transports/redis/stream.subscriber.options.js';

/** The error `fn` throws, which must be an InvalidOptionsError. */
function refusal(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error('no error thrown');
}

describe('redis options: one resolve*Options each, InvalidOptionsError naming option, rule and value', () => {
  it('RedisTransport: a wrong-typed value and an unknown key', () => {
    expect(refusal(() => resolveRedisTransportOptions({ readCount: '5' as never })).message).toBe(
      `RedisTransport: readCount must be an integer >= 1 (got "5", a string)`,
    );
    expect(
      refusal(() => resolveRedisTransportOptions({ mode: 'fanout' as never })).message,
    ).toMatch(/mode must be one of 'broadcast', 'work-queue' \(got "fanout", a string\)/);
    expect(refusal(() => resolveRedisTransportOptions({ streem: 'x' } as never)).message).toMatch(
      /RedisTransport: unknown option 'streem'/,
    );
    expect(refusal(() => resolveRedisTransportOptions({ url: 6379 as never })).message).toMatch(
      /url must be a non-empty string \(got 6379, a number\)/,
    );
    expect(resolveRedisTransportOptions({})).toMatchObject({
      stream: 'herald:events',
      mode: 'broadcast',
      group: 'herald',
    });
  });

  it('RedisTransport heraldEntry: compact by default, one-field or two-field on request, anything else refused naming it', () => {
    expect(resolveRedisTransportOptions({}).heraldEntry).toBe('compact');
    for (const heraldEntry of ['compact', 'one-field', 'two-field'] as const)
      expect(resolveRedisTransportOptions({ heraldEntry }).heraldEntry).toBe(heraldEntry);
    expect(
      refusal(() => resolveRedisTransportOptions({ heraldEntry: 'packed' as never })).message,
    ).toBe(
      `RedisTransport: heraldEntry must be one of 'compact', 'one-field', 'two-field' (got "packed", a string)`,
    );
    expect(
      refusal(() => resolveRedisTransportOptions({ heraldEntry: 2 as never })).message,
    ).toMatch(/heraldEntry must be one of 'compact', 'one-field', 'two-field' \(got 2, a number\)/);
    // Layout mainflux writes the Go layout: a herald entry layout there is a mistake.
    expect(
      refusal(() =>
        resolveRedisTransportOptions({
          layout: 'mainflux',
          streams: ['s'],
          instance: 'i',
          heraldEntry: 'two-field',
        }),
      ).message,
    ).toMatch(/heraldEntry must be used with layout 'herald' only \(got "two-field", a string\)/);
  });

  it('StreamPublisher: a wrong-typed value and an unknown key', () => {
    expect(
      refusal(() => resolveStreamPublisherOptions({ stream: 's', bufferSize: 1.5 })).message,
    ).toBe('StreamPublisher: bufferSize must be an integer >= 1 (got 1.5, a number)');
    expect(
      refusal(() => resolveStreamPublisherOptions({ stream: 's', encode: 'json' as never }))
        .message,
    ).toMatch(/encode must be a function \(got "json", a string\)/);
    expect(
      refusal(() => resolveStreamPublisherOptions({ stream: 's', maxlen: 5 } as never)).message,
    ).toMatch(/StreamPublisher: unknown option 'maxlen'/);
    expect(refusal(() => resolveStreamPublisherOptions({ stream: 7 } as never)).message).toMatch(
      /stream must be a non-empty string \(got 7, a number\)/,
    );
  });

  it('StreamSubscriber: a wrong-typed value and an unknown key, in group too', () => {
    const base = { stream: 's', name: 'n' };
    expect(refusal(() => resolveStreamSubscriberOptions({ ...base, blockMs: -1 })).message).toBe(
      'StreamSubscriber: blockMs must be a finite number > 0 (got -1, a number)',
    );
    expect(
      refusal(() => resolveStreamSubscriberOptions({ ...base, readMode: 'lua' as never })).message,
    ).toMatch(/readMode must be one of 'script', 'command'/);
    expect(
      refusal(() => resolveStreamSubscriberOptions({ ...base, groups: 'g' } as never)).message,
    ).toMatch(/StreamSubscriber: unknown option 'groups'/);
    expect(
      refusal(() =>
        resolveStreamSubscriberOptions({ ...base, group: { destroyOnClose: 'yes' as never } }),
      ).message,
    ).toMatch(/group.destroyOnClose must be a boolean \(got "yes", a string\)/);
    expect(
      refusal(() => resolveStreamSubscriberOptions({ ...base, group: { minIdle: 5 } as never }))
        .message,
    ).toMatch(/unknown option 'minIdle'/);
    const resolved = resolveStreamSubscriberOptions({ ...base, concurrency: Infinity, group: 'g' });
    expect(resolved.concurrency).toBe(Infinity);
    expect(resolved.group).toMatchObject({ name: 'g', deadLetterStream: 's:dead' });
    expect(resolved.cursorKey).toBe('mainflux:cursor:n:s');
  });
});
