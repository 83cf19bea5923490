import {
  Catch,
  Controller,
  Injectable,
  Module,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type ArgumentMetadata,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type INestApplicationContext,
  type NestInterceptor,
  type PipeTransform,
} from '@nestjs/common';
import { APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import { tap, type Observable } from 'rxjs';
import {
  CurrentEvent,
  EventData,
  EventPublisher,
  EventsModule,
  HERALD_CONTEXT_TYPE,
  OnEvent,
  silentLogger,
  type HandlerErrorContext,
  type HeraldEvent,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

const trail: string[] = [];

@Injectable()
class TracingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const event = context.switchToRpc().getContext<HeraldEvent>();
    trail.push(
      `before:${context.getType()}:${event.event}:${context.getClass().name}.${context.getHandler().name}`,
    );
    return next.handle().pipe(tap(() => trail.push(`after:${event.event}`)));
  }
}

@Injectable()
class GlobalInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType<string>() === HERALD_CONTEXT_TYPE) trail.push('global');
    return next.handle();
  }
}

@Injectable()
class EvenOnly implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const allowed = context.switchToRpc().getData<number>() % 2 === 0;
    trail.push(`guard:${allowed}`);
    return allowed;
  }
}

@Injectable()
class Double implements PipeTransform<number, number> {
  transform(value: number, metadata: ArgumentMetadata): number {
    trail.push(`pipe:${metadata.type}`);
    return value * 2;
  }
}

class Recoverable extends Error {}

/** Handles the error: returning a value tells Nest the filter handled it. */
@Catch(Recoverable)
class HandledFilter implements ExceptionFilter {
  catch(error: Recoverable, host: ArgumentsHost): { handled: true } {
    trail.push(`filter-handled:${host.getType()}:${error.message}`);
    return { handled: true };
  }
}

@Catch()
class RethrowFilter implements ExceptionFilter {
  catch(error: Error): never {
    trail.push(`filter-rethrow:${error.message}`);
    throw error;
  }
}

/** Catches but returns nothing: Nest 12 reads `undefined` as "not handled". */
@Catch()
class LogOnlyFilter implements ExceptionFilter {
  catch(error: Error): void {
    trail.push(`filter-log-only:${error.message}`);
  }
}

@Injectable()
class Handlers {
  @OnEvent('intercepted')
  @UseInterceptors(TracingInterceptor)
  intercepted(): void {
    trail.push('handler:intercepted');
  }

  @OnEvent('guarded')
  @UseGuards(EvenOnly)
  guarded(data: number): void {
    trail.push(`handler:guarded:${data}`);
  }

  @OnEvent('piped')
  piped(@EventData(Double) value: number, @CurrentEvent() event: HeraldEvent): void {
    trail.push(`handler:piped:${value}:${event.source}`);
  }

  @OnEvent('picked')
  picked(@EventData('n', Double) n: number): void {
    trail.push(`handler:picked:${n}`);
  }

  @OnEvent('filtered', 'handled')
  @UseFilters(HandledFilter)
  handled(): void {
    throw new Recoverable('recoverable');
  }

  @OnEvent('filtered', 'log-only')
  @UseFilters(LogOnlyFilter)
  logOnly(): void {
    throw new Error('logged');
  }

  @OnEvent('filtered', 'rethrown')
  @UseFilters(RethrowFilter)
  async rethrown(): Promise<void> {
    throw new Error('fatal');
  }
}

@Controller()
class EventsController {
  @OnEvent('controller')
  @UseInterceptors(TracingInterceptor)
  @UseGuards(EvenOnly)
  handle(@EventData(Double) value: number): void {
    trail.push(`handler:controller:${value}`);
  }
}

describe('Nest enhancers on @OnEvent handlers (e2e)', () => {
  let app: INestApplicationContext;
  let publisher: EventPublisher;
  const failures: HandlerErrorContext[] = [];

  beforeAll(async () => {
    @Module({
      imports: [
        EventsModule.forRoot({
          logger: silentLogger,
          onHandlerError: (_error, context) => void failures.push(context),
        }),
      ],
      controllers: [EventsController],
      providers: [Handlers, { provide: APP_INTERCEPTOR, useClass: GlobalInterceptor }],
    })
    class AppModule {}
    app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    publisher = app.get(EventPublisher);
  });

  afterAll(() => app.close());
  beforeEach(() => {
    trail.splice(0);
    failures.splice(0);
  });

  const settledAfter = async (
    post: () => Promise<unknown>,
  ): Promise<{ acked: number; nacked: number }> => {
    const before = publisher.stats().transport;
    await post();
    await waitFor(() => publisher.stats().inFlight === 0 && publisher.stats().queued === 0);
    const after = publisher.stats().transport;
    return { acked: after.acked - before.acked, nacked: after.nacked - before.nacked };
  };

  it('runs an interceptor (method-bound and global) around the handler, with context type herald', async () => {
    await settledAfter(() => publisher.post('intercepted', 'go', 1));
    expect(trail).toEqual([
      'global',
      'before:herald:go:Handlers.intercepted',
      'handler:intercepted',
      'after:go',
    ]);
  });

  it('applies method-bound enhancers to controller handlers too', async () => {
    await settledAfter(() => publisher.post('controller', 'go', 2));
    expect(trail).toEqual([
      'guard:true',
      'global',
      'before:herald:go:EventsController.handle',
      'pipe:custom',
      'handler:controller:4',
      'after:go',
    ]);
  });

  it('runs a guard: allowed events reach the handler, denied ones fail with ForbiddenException', async () => {
    expect(await settledAfter(() => publisher.post('guarded', 'n', 2))).toEqual({
      acked: 1,
      nacked: 0,
    });
    expect(await settledAfter(() => publisher.post('guarded', 'n', 3))).toEqual({
      acked: 0,
      nacked: 1,
    });
    // Guards run before interceptors, as in every Nest context.
    expect(trail).toEqual(['guard:true', 'global', 'handler:guarded:2', 'guard:false']);
    expect(failures.map(f => f.handler)).toEqual(['Handlers.guarded']);
  });

  it('runs pipes on @EventData parameters and injects the event with @CurrentEvent', async () => {
    await settledAfter(() => publisher.post('piped', 'n', 21));
    await settledAfter(() => publisher.post('picked', 'n', { n: 4 }));
    expect(trail.filter(t => !t.startsWith('global'))).toEqual([
      'pipe:custom',
      'handler:piped:42:piped',
      'pipe:custom',
      'handler:picked:8',
    ]);
  });

  it('counts an error a filter handled as success, and one it rethrew as failure', async () => {
    expect(await settledAfter(() => publisher.post('filtered', 'handled', 1))).toEqual({
      acked: 1,
      nacked: 0,
    });
    expect(failures).toEqual([]);
    expect(await settledAfter(() => publisher.post('filtered', 'rethrown', 1))).toEqual({
      acked: 0,
      nacked: 1,
    });
    expect(trail.filter(t => t.startsWith('filter'))).toEqual([
      'filter-handled:herald:recoverable',
      'filter-rethrow:fatal',
    ]);
    expect(failures.map(f => f.handler)).toEqual(['Handlers.rethrown']);
  });

  it('counts an error as failure when the filter returns nothing (Nest 12: not handled)', async () => {
    expect(await settledAfter(() => publisher.post('filtered', 'log-only', 1))).toEqual({
      acked: 0,
      nacked: 1,
    });
    expect(trail).toContain('filter-log-only:logged');
    expect(failures.map(f => f.handler)).toEqual(['Handlers.logOnly']);
  });
});
