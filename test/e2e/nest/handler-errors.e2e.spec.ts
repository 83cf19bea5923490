import { Injectable, Module, Scope } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventPublisher,
  EventsModule,
  OnEvent,
  type HandlerErrorContext,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';
import { CaptureLogger } from './capture-logger.js';

const SECRET = 'card-4111-1111-1111-1111';

@Injectable()
class Failing {
  @OnEvent('iso')
  throws(_data: { secret: string }): void {
    throw new Error('sync boom');
  }

  @OnEvent('iso')
  async rejects(): Promise<void> {
    throw new Error('async boom');
  }
}

@Injectable()
class Healthy {
  ran: unknown[] = [];
  @OnEvent('iso')
  handle(data: unknown): void {
    this.ran.push(data);
  }
}

@Injectable({ scope: Scope.REQUEST })
class Unbuildable {
  constructor() {
    throw new Error('cannot build');
  }
  @OnEvent('iso')
  never(): void {}
}

describe('@OnEvent handler failures (e2e)', () => {
  it('counts a scoped provider that cannot be built for an event as that handler failing', async () => {
    const logger = new CaptureLogger();
    @Module({
      imports: [EventsModule.forRoot({ logger })],
      providers: [Unbuildable, Healthy],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      const publisher = app.get(EventPublisher);
      await publisher.post('iso', 'x', 1);
      await waitFor(() => publisher.stats().failed === 1 && app.get(Healthy).ran.length === 1);
      expect(logger.text()).toContain('handler Unbuildable.never failed on iso/x');
      expect(logger.text()).toContain('cannot build');
    } finally {
      await app.close();
    }
  });

  it('isolates a throwing and a rejecting handler: logged without data, counted, passed to onHandlerError', async () => {
    const logger = new CaptureLogger();
    const failures: { error: unknown; context: HandlerErrorContext }[] = [];
    @Module({
      imports: [
        EventsModule.forRoot({
          logger,
          onHandlerError: (error, context) => void failures.push({ error, context }),
        }),
      ],
      providers: [Failing, Healthy],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      const publisher = app.get(EventPublisher);
      const { id } = await publisher.post('iso', 'x', { secret: SECRET });
      await publisher.post('iso', 'y', { secret: SECRET });
      await waitFor(() => app.get(Healthy).ran.length === 2 && failures.length === 4);
      expect(app.get(Healthy).ran).toEqual([{ secret: SECRET }, { secret: SECRET }]);
      expect(publisher.stats().failed).toBe(4);
      expect(publisher.stats().handled).toBe(2);
      const first = failures.filter(f => f.context.id === id);
      expect(first.map(f => f.context.handler).sort()).toEqual([
        'Failing.rejects',
        'Failing.throws',
      ]);
      expect(first.map(f => (f.error as Error).message).sort()).toEqual([
        'async boom',
        'sync boom',
      ]);
      expect(first[0].context).toMatchObject({ source: 'iso', event: 'x', attempt: 1 });
      const text = logger.text();
      for (const handler of ['Failing.throws', 'Failing.rejects']) {
        const line = text.split('\n').find(l => l.includes(`handler ${handler} failed on iso/x`));
        expect(line).toContain('bus-handler-failed');
        expect(line).toContain(`id=${id}`);
      }
      expect(text).not.toContain(SECRET);
    } finally {
      await app.close();
    }
  });
});
