import { InvalidOptionsError } from '../../../../lib/common/errors.js';
import { consoleLogger } from '../../../../lib/common/logger.js';
import {
  resolveHeraldClientOptions,
  resolveHeraldServerOptions,
} from '../../../../lib/microservices/base/herald.options.js';

describe('resolveHeraldServerOptions', () => {
  it('applies the defaults', () => {
    expect(resolveHeraldServerOptions('S', {})).toEqual({
      startup: 'fail-fast',
      connectTimeoutMs: 10_000,
      closeTimeoutMs: 5000,
      serializer: undefined,
      deserializer: undefined,
      logger: consoleLogger,
    });
  });

  it('names option, rule and value with its type', () => {
    expect(() => resolveHeraldServerOptions('S', { startup: 'lazy' as never })).toThrow(
      new InvalidOptionsError(
        `S: startup must be one of 'fail-fast', 'degraded' (got "lazy", a string)`,
      ),
    );
    expect(() => resolveHeraldServerOptions('S', { serializer: {} as never })).toThrow(
      /S: serializer must be an object with a serialize\(\) method \(got an instance of Object\)/,
    );
  });
});

describe('resolveHeraldClientOptions', () => {
  it('takes 0 as "wait forever" for requestTimeoutMs and refuses a string', () => {
    expect(resolveHeraldClientOptions('C', { requestTimeoutMs: 0 }).requestTimeoutMs).toBe(0);
    expect(() => resolveHeraldClientOptions('C', { requestTimeoutMs: '1' as never })).toThrow(
      /C: requestTimeoutMs must be a finite number >= 0 \(got "1", a string\)/,
    );
  });

  it('refuses a deserializer without deserialize()', () => {
    expect(() =>
      resolveHeraldClientOptions('C', { deserializer: { serialize: () => 1 } as never }),
    ).toThrow(/C: deserializer must be an object with a deserialize\(\) method/);
  });
});
