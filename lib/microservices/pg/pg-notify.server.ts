import type { WritePacket } from '@nestjs/microservices';
import { PayloadTooLargeError } from '../../common/errors.js';
import { logLine } from '../../common/log-line.js';
import { isAdvisory, type PgHubEvent } from '../../transports/pg/pg.advisory.js';
import { encodeEvent } from '../../transports/pg/pg.codec.js';
import type { PgConsumer } from '../../transports/pg/pg.consumer.js';
import { PgHub, type PgHubState } from '../../transports/pg/pg.hub.js';
import { errorReply, HeraldServer, type HeraldIncomingPacket } from '../base/herald.server.js';
import { PG_NOTIFY_TRANSPORT } from '../microservice.constants.js';
import { PG_REPLY_CHANNEL_PREFIX, pgChannelOf } from './pg-notify.channel.js';
import { HUB_STATUS } from './pg-notify.hub-status.js';
import { PgNotifyContext } from './pg-notify.context.js';
import { resolvePgNotifyServerOptions, type PgNotifyServerOptions } from './pg-notify.options.js';
const PURGE_EVERY_MS = 60_000;

function quoteTable(name: string): string {
  return name
    .split('.')
    .map(part => `"${part}"`)
    .join('.');
}

/**
 * A Nest microservice over PostgreSQL LISTEN/NOTIFY, on a {@link PgHub}:
 * `NestFactory.createMicroservice(AppModule, { strategy: new PgNotifyServer({ connectionString }) })`.
 *
 * - `@EventPattern('orders')`: the handler gets the data a `PgNotifyClient`
 *   emitted, or the pg-hub value a trigger or pg-hub service sent on the
 *   channel `orders`; at most once (NOTIFY), handler errors logged by Nest.
 * - `@MessagePattern(...)`: request/response; every replica receives the
 *   request, one answers (a claim row), the reply goes to the client's reply
 *   channel. A reply over 7999 bytes answers `ReplyTooLargeError`.
 * - Object patterns travel on `nest_<sha1>` channels.
 * @publicApi
 */
export class PgNotifyServer extends HeraldServer<PgNotifyContext> {
  override transportId = PG_NOTIFY_TRANSPORT;
  readonly hub: PgHub;
  private readonly ownsHub: boolean;
  private readonly claimRequests: boolean;
  private readonly claimTable: string;
  private readonly claimTtlMs: number;
  /** Channel -> route. */
  private readonly channels = new Map<string, string>();
  private consumer?: PgConsumer;
  private tableReady?: Promise<void>;
  private lastPurge = 0;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly counters = {
    received: 0,
    events: 0,
    requests: 0,
    claimsWon: 0,
    claimsLost: 0,
    claimErrors: 0,
    replies: 0,
    replyErrors: 0,
    failed: 0,
    unanswerable: 0,
  };

  private readonly onHubState = (state: PgHubState, reason?: string): void => {
    const status = HUB_STATUS[state];
    if (status) this.setStatus(status, reason);
  };

  constructor(options: PgNotifyServerOptions = {}) {
    const resolved = resolvePgNotifyServerOptions(options);
    super(resolved);
    this.claimRequests = resolved.claimRequests;
    this.claimTable = resolved.claimTable;
    this.claimTtlMs = resolved.claimTtlMs;
    if (resolved.hub) {
      this.hub = resolved.hub;
      this.ownsHub = false;
    } else {
      this.hub = new PgHub({
        name: 'pg-notify-server',
        ...resolved.hubOptions,
        logger: this.connectionLogger,
      });
      this.ownsHub = true;
    }
  }

  /**
   * Counters: `received` notifications, `events`, `requests`, request
   * claims `claimsWon` / `claimsLost` / `claimErrors`, `replies` sent,
   * `replyErrors` (replies replaced by an error reply), `failed` messages,
   * `unanswerable` requests (no reply channel in their id: dropped, logged),
   * and `inFlight` (being handled now).
   */
  stats(): Readonly<Record<string, number>> {
    return { ...this.counters, inFlight: this.inFlight.size };
  }

  /** The hub (its pool and LISTEN connection). */
  unwrap<T = PgHub>(): T {
    return this.hub as T;
  }

  protected checkRoute(route: string, pattern: unknown): void {
    pgChannelOf(route, pattern);
  }

  protected async start(routes: readonly string[]): Promise<void> {
    for (const route of routes) {
      this.channels.set(pgChannelOf(route, this.declaredPatterns.get(route)), route);
    }
    this.hub.on('state', this.onHubState);
    this.consumer = this.hub.consumer(event => this.onHubEvent(event));
    const subscribed =
      this.channels.size > 0 ? this.consumer.subscribe([...this.channels.keys()]) : undefined;
    await this.hub.start();
    await subscribed;
    this.setStatus('connected');
  }

  protected async stop(): Promise<void> {
    // Intake stops with `closing` (onHubEvent drops what comes now). A shared
    // hub UNLISTENs our channels; an own hub drops its LISTEN session whole.
    if (!this.ownsHub) this.consumer?.close();
    // NOTIFY is not redelivered: give the handlers and replies in flight their chance.
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inFlight]),
        new Promise(resolve => (timer = setTimeout(resolve, this.closeTimeoutMs))),
      ]);
      clearTimeout(timer);
    }
    this.hub.off('state', this.onHubState);
    if (this.ownsHub) await this.hub.stop();
  }

  private onHubEvent(event: PgHubEvent): void {
    if (isAdvisory(event)) {
      if (event.value.action === 'reconnect') this.events.emit('reconnect');
      return;
    }
    const route = this.channels.get(event.topic!);
    if (route === undefined || this.closing) return;
    this.counters.received++;
    const work = this.handleNotification(route, event).catch((error: unknown) => {
      this.counters.failed++;
      this.reportError(error as Error, `message on ${event.topic}`);
    });
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async handleNotification(route: string, event: PgHubEvent): Promise<void> {
    const deserialized = this.deserialize(event.value, route);
    const packet = deserialized instanceof Promise ? await deserialized : deserialized;
    const context = new PgNotifyContext([
      event.topic!,
      event.key,
      event.processId,
      packet.metadata,
    ]);
    const id = packet.id;
    if (id === undefined || id === null) {
      this.counters.events++;
      await this.handleHeraldEvent(route, packet, context);
      return;
    }
    const replyTo = typeof id === 'string' ? this.replyAddressOf(id) : undefined;
    if (!replyTo?.startsWith(PG_REPLY_CHANNEL_PREFIX) || !/^[a-z0-9_]{1,63}$/.test(replyTo)) {
      this.counters.unanswerable++;
      this.warnings.warn(
        `no-reply-channel:${event.topic}`,
        logLine(
          'pg',
          'notify-ms-no-reply-channel',
          `PgNotifyServer: request without a reply channel in its id, dropped (${this.counters.unanswerable} so far)`,
          { channel: event.topic, id: typeof id === 'string' ? id : String(id) },
        ),
      );
      return;
    }
    this.counters.requests++;
    if (this.claimRequests) {
      let won: boolean;
      try {
        won = await this.claim(id as string);
      } catch (error) {
        // Without a claim nobody can tell who answers: leave it (the caller times out).
        this.counters.claimErrors++;
        this.reportError(error as Error, `claiming request ${String(id)}`);
        return;
      }
      if (!won) {
        this.counters.claimsLost++;
        return;
      }
      this.counters.claimsWon++;
    }
    await this.handleHeraldRequest(
      route,
      packet as HeraldIncomingPacket & { id: string },
      context,
      reply => this.reply(replyTo, reply),
    );
  }

  /** Sends a reply; one too large for NOTIFY (or not JSON) becomes an error reply the caller can read. */
  private async reply(channel: string, reply: WritePacket & { id: string }): Promise<void> {
    let payload: string;
    try {
      payload = encodeEvent([], this.serializeReply(reply));
      await this.hub.notifyPayload(channel, payload);
      this.counters.replies++;
      return;
    } catch (error) {
      this.counters.replyErrors++;
      const err =
        error instanceof PayloadTooLargeError
          ? {
              status: 'error',
              name: 'ReplyTooLargeError',
              message: error.message,
              size: error.size,
              limit: error.limit,
            }
          : errorReply(error);
      this.reportError(error as Error, `reply ${reply.id}`);
      payload = encodeEvent([], this.serializeReply({ id: reply.id, err, isDisposed: true }));
      await this.hub.notifyPayload(channel, payload);
    }
  }

  /** True when this replica won the request (one INSERT on the database's clock). */
  private async claim(id: string): Promise<boolean> {
    this.tableReady ??= this.createTable().catch(error => {
      this.tableReady = undefined;
      throw error;
    });
    await this.tableReady;
    const table = quoteTable(this.claimTable);
    const result = await this.hub.pool.query(
      `INSERT INTO ${table} (key, expires_at) VALUES ($1, now() + $2::int * interval '1 millisecond') ` +
        'ON CONFLICT (key) DO NOTHING RETURNING 1',
      [`ms:${id}`, Math.round(this.claimTtlMs)],
    );
    const now = Date.now();
    if (now - this.lastPurge > PURGE_EVERY_MS) {
      this.lastPurge = now;
      this.hub.pool
        .query(`DELETE FROM ${table} WHERE expires_at <= now()`)
        .catch((error: unknown) => this.reportError(error as Error, 'purging request claims'));
    }
    return result.rowCount === 1;
  }

  private async createTable(): Promise<void> {
    const sql =
      `CREATE UNLOGGED TABLE IF NOT EXISTS ${quoteTable(this.claimTable)} ` +
      '(key text PRIMARY KEY, expires_at timestamptz NOT NULL)';
    try {
      await this.hub.pool.query(sql);
    } catch {
      // Two creators at once can collide on the catalog: the second try sees the table.
      await this.hub.pool.query(sql);
    }
  }
}
