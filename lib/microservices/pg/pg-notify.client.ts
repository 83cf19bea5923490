import { randomBytes } from 'node:crypto';
import { TransportClosedError } from '../../common/errors.js';
import { isAdvisory, type PgHubEvent } from '../../transports/pg/pg.advisory.js';
import { encodeEvent } from '../../transports/pg/pg.codec.js';
import type { PgConsumer } from '../../transports/pg/pg.consumer.js';
import { PgHub, type PgHubState } from '../../transports/pg/pg.hub.js';
import { HeraldClient } from '../base/herald.client.js';
import type {
  ClientEventCatalog,
  ClientMessageCatalog,
  UntypedClientEvents,
  UntypedClientMessages,
} from '../microservice.catalog.js';
import { PG_REPLY_CHANNEL_PREFIX, pgChannelOf } from './pg-notify.channel.js';
import { HUB_STATUS } from './pg-notify.hub-status.js';
import { resolvePgNotifyClientOptions, type PgNotifyClientOptions } from './pg-notify.options.js';

/**
 * The client of {@link PgNotifyServer}, on a {@link PgHub}: `emit` resolves
 * once PostgreSQL took the NOTIFY; `send` LISTENs on its own reply channel
 * (`nest_reply_<random>`, UNLISTENed at `close()`), the request id carries
 * that channel. Usable directly or through
 * `ClientsModule.register([{ name, customClass: PgNotifyClient, options }])`.
 * @publicApi
 */
export class PgNotifyClient<
  Events extends ClientEventCatalog<Events> = UntypedClientEvents,
  Messages extends ClientMessageCatalog<Messages> = UntypedClientMessages,
> extends HeraldClient<Events, Messages> {
  readonly hub: PgHub;
  private readonly ownsHub: boolean;
  protected readonly replyAddress = PG_REPLY_CHANNEL_PREFIX + randomBytes(8).toString('hex');
  private consumer?: PgConsumer;

  private readonly onHubState = (state: PgHubState, reason?: string): void => {
    const status = HUB_STATUS[state];
    if (status) this.setStatus(status, reason);
  };

  constructor(options: PgNotifyClientOptions = {}) {
    const resolved = resolvePgNotifyClientOptions(options);
    super(resolved);
    if (resolved.hub) {
      this.hub = resolved.hub;
      this.ownsHub = false;
    } else {
      this.hub = new PgHub({
        name: 'pg-notify-client',
        ...resolved.hubOptions,
        logger: this.connectionLogger,
      });
      this.ownsHub = true;
    }
  }

  /** The hub (its pool and LISTEN connection). */
  unwrap<T = PgHub>(): T {
    return this.hub as T;
  }

  /** The channel this client's replies come on. */
  get replyChannel(): string {
    return this.replyAddress;
  }

  protected checkRoute(route: string, pattern: unknown): void {
    pgChannelOf(route, pattern);
  }

  protected async open(): Promise<void> {
    if (!this.consumer) {
      this.hub.on('state', this.onHubState);
      this.consumer = this.hub.consumer(event => this.onHubEvent(event));
    }
    const subscribed = this.consumer.subscribe(this.replyAddress);
    await this.hub.start();
    await subscribed;
    this.setStatus('connected');
  }

  protected async shut(): Promise<void> {
    this.hub.off('state', this.onHubState);
    // An own hub drops its LISTEN session whole; a shared one UNLISTENs our reply channel.
    if (this.ownsHub) await this.hub.stop();
    else this.consumer?.close();
  }

  private onHubEvent(event: PgHubEvent): void {
    if (isAdvisory(event)) {
      if (event.value.action === 'reconnect') this.events.emit('reconnect');
      return;
    }
    if (event.topic === this.replyAddress) void this.receiveReply(event.value);
  }

  protected sendRequest(route: string, packet: unknown): Promise<void> {
    return this.notify(route, packet);
  }

  protected sendEvent(route: string, packet: unknown): Promise<void> {
    return this.notify(route, packet);
  }

  private async notify(route: string, packet: unknown): Promise<void> {
    const channel = pgChannelOf(route, route.startsWith('{') ? {} : route);
    const sent = await this.hub.notifyPayload(channel, encodeEvent([], packet));
    if (!sent) throw new TransportClosedError('pg hub stopped before the notify went out');
  }
}
