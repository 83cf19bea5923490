import { Injectable, Logger } from '@nestjs/common';
import { EventPublisher } from '../../lib/index.js';

export interface OrderCreated {
  orderId: number;
  amountCents: number;
}

/** A service that posts events: it only needs EventPublisher. */
@Injectable()
export class OrdersService {
  private readonly logger = new Logger('OrdersService');
  private nextId = 1;

  constructor(private readonly events: EventPublisher) {
    // Posted while the app is still being built: it waits in a buffer and is
    // delivered once handlers are registered, at onApplicationBootstrap.
    void this.events.post('app', 'constructing', { service: 'orders' });
  }

  async placeOrder(amountCents: number): Promise<number> {
    const orderId = this.nextId++;
    const { id } = await this.events.post(
      'orders',
      'created',
      { orderId, amountCents } satisfies OrderCreated,
      { key: [orderId], headers: { tenant: 'acme' } },
    );
    this.logger.log(`posted orders/created for order ${orderId} (event id ${id})`);
    return orderId;
  }

  async nightlyReport(): Promise<void> {
    // unique: one run per key; repeats within unique.ttlMs are dropped.
    await this.events.post('reports', 'nightly', null, { unique: 'report-2024-01-02' });
    await this.events.post('reports', 'nightly', null, { unique: 'report-2024-01-02' });
  }

  cacheWarmed(cache: Map<string, number>): void {
    // postLocal: this process only, the very object (a Map: no codec involved).
    this.events.postLocal('cache', 'warmed', cache);
  }
}
