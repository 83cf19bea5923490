import { Injectable, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  BusDrainingError,
  EventPublisher,
  EventsModule,
  OnEvent,
  TransportClosedError,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';
import { CaptureLogger } from './capture-logger.js';

describe('EventsModule shutdown drain (e2e)', () => {
  it('ends under a steady in-app producer: later posts are refused, every resolved post was handled, no handler runs after close', async () => {
    const state = {
      resolved: 0,
      handled: 0,
      running: 0,
      refused: [] as unknown[],
      stop: false,
      loops: 0,
    };

    @Injectable()
    class Producer implements OnApplicationBootstrap {
      constructor(private readonly events: EventPublisher) {}
      onApplicationBootstrap(): void {
        const loop = (): void => {
          if (state.stop) return;
          state.loops++;
          this.events.post('steady', 'tick', state.loops).then(
            () => void state.resolved++,
            (error: unknown) => void state.refused.push(error),
          );
          try {
            this.events.postLocal('steady', 'local', state.loops);
            state.resolved++;
          } catch (error) {
            state.refused.push(error);
          }
          setImmediate(loop);
        };
        loop();
      }
    }

    @Injectable()
    class Worker {
      @OnEvent('steady')
      async onTick(): Promise<void> {
        state.running++;
        await new Promise(resolve => setImmediate(resolve));
        state.running--;
        state.handled++;
      }
    }

    @Module({
      // Far beyond the test's timeout: if the drain did not end, the test fails.
      imports: [EventsModule.forRoot({ shutdownTimeoutMs: 120_000, logger: new CaptureLogger() })],
      providers: [Producer, Worker],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    await waitFor(() => state.handled > 200);
    await app.close();
    const runningAtClose = state.running;
    state.stop = true;
    expect(runningAtClose).toBe(0);
    expect(state.handled).toBe(state.resolved);
    expect(state.refused.length).toBeGreaterThan(0);
    for (const error of state.refused) expect(error).toBeInstanceOf(TransportClosedError);
    expect(state.refused.some(error => error instanceof BusDrainingError)).toBe(true);
  });

  it('when shutdownTimeoutMs fires, the warning names each handler still running', async () => {
    const logger = new CaptureLogger();
    let started = 0;

    @Injectable()
    class Mailer {
      @OnEvent('mail')
      send(): Promise<void> {
        started++;
        return new Promise(() => undefined);
      }
    }

    @Module({
      imports: [EventsModule.forRoot({ shutdownTimeoutMs: 20, logger })],
      providers: [Mailer],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    app.get(EventPublisher).postLocal('mail', 'welcome');
    await waitFor(() => started === 1);
    await app.close();
    const warning = logger.lines.find(line =>
      line.message.startsWith('bus module-shutdown-timeout: shutdownTimeoutMs'),
    );
    expect(warning?.message).toContain('handlers still running: Mailer.send');
  });
});
