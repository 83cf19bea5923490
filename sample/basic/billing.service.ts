import {
  Catch,
  Injectable,
  Logger,
  UseFilters,
  type ExceptionFilter,
  type ArgumentsHost,
} from '@nestjs/common';
import { EventPublisher, OnEvent, type HeraldEvent } from '../../lib/index.js';
import type { OrderCreated } from './orders.service.js';

class CardDeclinedError extends Error {}

/** Handles the decline: returning a value marks the event as handled (acked). */
@Catch(CardDeclinedError)
class DeclineFilter implements ExceptionFilter {
  private readonly logger = new Logger('DeclineFilter');
  catch(error: CardDeclinedError, host: ArgumentsHost): { handled: true } {
    const event = host.getArgByIndex<HeraldEvent>(1);
    this.logger.warn(`${event.source}/${event.event} ${event.id}: ${error.message}, retry later`);
    return { handled: true };
  }
}

@Injectable()
export class BillingService {
  private readonly logger = new Logger('BillingService');
  readonly charged: number[] = [];
  readonly warmed: Map<string, number>[] = [];
  reports = 0;

  constructor(private readonly events: EventPublisher) {}

  @OnEvent('orders', 'created')
  @UseFilters(DeclineFilter)
  async charge(order: OrderCreated, event: HeraldEvent): Promise<void> {
    if (order.amountCents > 100_000) throw new CardDeclinedError('card declined');
    this.charged.push(order.orderId);
    this.logger.log(
      `charged order ${order.orderId} (key ${event.key?.join(',')}, tenant ${event.headers.tenant})`,
    );
    await this.events.post('orders', 'paid', { orderId: order.orderId });
  }

  /** Stacked: one method, two patterns; an event matching both runs it once. */
  @OnEvent('app')
  @OnEvent('*', 'constructing')
  onAppEvent(_data: unknown, event: HeraldEvent): void {
    this.logger.log(`app event ${event.source}/${event.event}`);
  }

  @OnEvent('reports', 'nightly')
  onNightly(): void {
    this.reports++;
  }

  @OnEvent('cache', 'warmed')
  onWarmed(cache: Map<string, number>): void {
    this.warmed.push(cache);
  }
}
