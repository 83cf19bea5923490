import { Inject, Injectable, Logger, Scope } from '@nestjs/common';
import { EVENT_PAYLOAD, OnEvent, type HeraldEvent } from '../../lib/index.js';

/** Request-scoped: a fresh instance per event, with the event injected. */
@Injectable({ scope: Scope.REQUEST })
export class AuditService {
  static readonly entries: string[] = [];
  private readonly logger = new Logger('AuditService');

  constructor(@Inject(EVENT_PAYLOAD) private readonly event: HeraldEvent) {}

  @OnEvent('orders', 'paid')
  record(): void {
    const entry = `${this.event.source}/${this.event.event} ${JSON.stringify(this.event.data)}`;
    AuditService.entries.push(entry);
    this.logger.log(`audit: ${entry}`);
  }
}
