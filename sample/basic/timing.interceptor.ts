import {
  Injectable,
  Logger,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { tap, type Observable } from 'rxjs';
import { HERALD_CONTEXT_TYPE, type HeraldEvent } from '../../lib/index.js';

/** An ordinary Nest interceptor, bound to an @OnEvent handler like to a route. */
@Injectable()
export class TimingInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Timing');

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType<string>() !== HERALD_CONTEXT_TYPE) return next.handle();
    const event = context.switchToRpc().getContext<HeraldEvent>();
    const started = performance.now();
    return next
      .handle()
      .pipe(
        tap(() =>
          this.logger.log(
            `${context.getClass().name}.${context.getHandler().name} handled ${event.source}/${event.event} in ${(performance.now() - started).toFixed(2)} ms`,
          ),
        ),
      );
  }
}
