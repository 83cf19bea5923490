// Issue 17 point 2: @OnEvent(source, ...events, { prepend, timeoutMs }).
import { Injectable, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventPublisher,
  EventsModule,
  HandlerTimeoutError,
  InvalidOptionsError,
  OnEvent,
  silentLogger,
  type OnEventOptions,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

const order: string[] = [];

@Injectable()
class Early {
  @OnEvent('orders', 'created')
  first(): void {
    order.push('early');
  }
}

@Injectable()
class Late {
  @OnEvent('orders', 'created', { prepend: true })
  prepended(): void {
    order.push('prepended');
  }

  @OnEvent('orders', { prepend: true })
  anyOrder(): void {
    order.push('prepended-any');
  }

  @OnEvent('orders', 'created')
  last(): void {
    order.push('late');
  }
}

async function start(providers: Type[], onHandlerError?: (error: unknown) => void) {
  @Module({
    imports: [EventsModule.forRoot({ logger: silentLogger, onHandlerError })],
    providers,
  })
  class AppModule {}
  return NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
}

describe('@OnEvent options', () => {
  it('prepend runs a handler before those registered earlier', async () => {
    const app = await start([Early, Late]);
    const events = app.get(EventPublisher);
    await events.postLocal('orders', 'created', null, { wait: true });
    // The later prepended one first (as prependListener), then registration order.
    expect(order).toEqual(['prepended-any', 'prepended', 'early', 'late']);
    order.splice(0);
    const dispose = events.register(() => order.push('by hand'), 'orders', 'created', {
      prepend: true,
    });
    await events.postLocal('orders', 'created', null, { wait: true });
    expect(order[0]).toBe('by hand');
    dispose();
    await app.close();
  });

  it("timeoutMs is the handler's own handlerTimeoutMs", async () => {
    let release!: () => void;
    const stuck = new Promise<void>(resolve => (release = resolve));
    @Injectable()
    class Slow {
      @OnEvent('jobs', 'run', { timeoutMs: 20 })
      run(): Promise<void> {
        return stuck;
      }

      @OnEvent('jobs', 'run')
      fine(): Promise<string> {
        return stuck.then(() => 'fine');
      }
    }
    const errors: unknown[] = [];
    const app = await start([Slow], error => errors.push(error));
    const events = app.get(EventPublisher);
    const outcome = events.postLocal('jobs', 'run', null, { wait: true });
    await waitFor(() => errors.length === 1);
    expect(errors[0]).toBeInstanceOf(HandlerTimeoutError);
    release();
    const outcomes = await outcome;
    expect(outcomes.map(o => `${o.handler} ${o.status}`)).toEqual([
      'Slow.run rejected',
      'Slow.fine fulfilled',
    ]);
    expect(events.stats().timeouts).toBe(1);
    await app.close();
  });

  it('unknown option keys are refused when the class is defined, naming them and Class.method', () => {
    expect(() => {
      class Habit {
        @OnEvent('orders', 'created', { async: true, suppressErrors: false } as OnEventOptions)
        handle(): void {}
      }
      return Habit;
    }).toThrow(InvalidOptionsError);
    expect(() => {
      class Habit {
        @OnEvent('orders', 'created', { async: true, suppressErrors: false } as OnEventOptions)
        handle(): void {}
      }
      return Habit;
    }).toThrow(/@OnEvent on Habit\.handle: unknown options 'async', 'suppressErrors'/);
    expect(() => {
      class Bad {
        @OnEvent('orders', { timeoutMs: -1 })
        handle(): void {}
      }
      return Bad;
    }).toThrow(/@OnEvent on Bad\.handle: timeoutMs must be/);
  });

  it('symbol and array names are refused with a pointer to the migration notes', () => {
    expect(() => OnEvent(Symbol('x') as never)).toThrow(/Coming from @nestjs\/event-emitter/);
    expect(() => OnEvent(['a', 'b'] as never)).toThrow(TypeError);
  });
});
