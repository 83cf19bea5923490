import { EVENT_HANDLER_METADATA, InvalidOptionsError, OnEvent } from '../../../lib/index.js';

function metadataOf(target: object, method: string): unknown {
  return Reflect.getMetadata(
    EVENT_HANDLER_METADATA,
    (target as Record<string, unknown>)[method] as object,
  );
}

describe('@OnEvent', () => {
  it('stores source, events and the resolved options; stacks', () => {
    class Handlers {
      @OnEvent('orders', 'created', { prepend: true, timeoutMs: 50 })
      @OnEvent('refunds')
      handle(): void {}
    }
    expect(metadataOf(Handlers.prototype, 'handle')).toEqual([
      { source: 'refunds', events: [] },
      { source: 'orders', events: ['created'], options: { prepend: true, timeoutMs: 50 } },
    ]);
  });

  it('refuses unknown and bad options at class definition, naming Class.method and the keys', () => {
    const define = (options: object) => () => {
      class Named {
        @OnEvent('orders', options as never)
        handle(): void {}
      }
      return Named;
    };
    expect(define({ nextTick: true })).toThrow(InvalidOptionsError);
    expect(define({ nextTick: true })).toThrow(
      /@OnEvent on Named\.handle: unknown option 'nextTick'/,
    );
    expect(define({ prepend: 'yes' })).toThrow(/prepend must be a boolean \(got "yes", a string\)/);
  });

  it('refuses names that are not non-empty strings', () => {
    expect(() => OnEvent('')).toThrow(TypeError);
    expect(() => OnEvent('orders', 3 as never)).toThrow(/names must be non-empty strings/);
  });
});
