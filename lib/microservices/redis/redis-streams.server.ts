import type { WritePacket } from '@nestjs/microservices';
import { jsonCodec } from '../../common/json.codec.js';
import { logLine } from '../../common/log-line.js';
import type { RedisConnectionOptions } from '../../transports/redis/redis.connection.js';
import { StreamEntryError } from '../../transports/redis/redis.errors.js';
import { StreamPublisher } from '../../transports/redis/stream.publisher.js';
import {
  StreamSubscriber,
  uniqueConsumerName,
  type StreamMessage,
} from '../../transports/redis/stream.subscriber.js';
import { errorReply, HeraldServer, type HeraldIncomingPacket } from '../base/herald.server.js';
import { REDIS_STREAMS_TRANSPORT } from '../microservice.constants.js';
import { ConnectionStates } from '../../transports/redis/redis.connection-states.js';
import { InvalidPatternError } from '../microservice.errors.js';
import { RedisStreamsContext } from './redis-streams.context.js';
import {
  connectionOptions,
  resolveRedisStreamsServerOptions,
  type RedisStreamsServerOptions,
  type ResolvedRedisStreamsServerOptions,
} from './redis-streams.options.js';
import { PACKET_FIELD, REPLY_STREAM_INFIX, parseEntry } from './redis-streams.wire.js';

/** What `unwrap()` returns. @publicApi */
export interface RedisStreamsServerParts {
  /** One per pattern, reading `<prefix><route>` in the group. */
  readonly subscribers: ReadonlyMap<string, StreamSubscriber>;
  /** Writes the replies. */
  readonly publisher: StreamPublisher<readonly string[]>;
}

/**
 * A Nest microservice over Redis Streams, on the redis transport's
 * subscriber and publisher:
 * `NestFactory.createMicroservice(AppModule, { strategy: new RedisStreamsServer({ url }) })`.
 *
 * Each pattern is a stream read through a consumer group, so each entry
 * goes to one instance of the service. Events are acknowledged only after
 * their handler settled (`propagatesEventHandlerErrors`): a failed one is
 * delivered again, claimed from a dead instance after `minIdleMs`, and
 * moved to `<stream>:dead` after `maxDeliveries`. Requests are answered on
 * the client's reply stream, then acknowledged.
 * @publicApi
 */
export class RedisStreamsServer extends HeraldServer<RedisStreamsContext> {
  override transportId = REDIS_STREAMS_TRANSPORT;
  override readonly propagatesEventHandlerErrors = true;
  readonly streamPrefix: string;
  readonly group: string;
  readonly consumer: string;
  private readonly connection: RedisConnectionOptions;
  private readonly subscribers = new Map<string, StreamSubscriber>();
  private publisher?: StreamPublisher<readonly string[]>;
  private readonly connections = new ConnectionStates({
    connected: again => {
      if (again) this.events.emit('reconnect');
      this.setStatus('connected');
    },
    // The fold gives no cause: the connections' last logged failure is it.
    reconnecting: () => this.setStatus('reconnecting', this.connectionLogger.last),
  });

  private readonly options: ResolvedRedisStreamsServerOptions;
  private readonly counters = { events: 0, requests: 0, unanswerable: 0 };

  constructor(options: RedisStreamsServerOptions = {}) {
    const resolved = resolveRedisStreamsServerOptions(options);
    super(resolved);
    this.options = resolved;
    this.streamPrefix = resolved.streamPrefix;
    this.group = resolved.group;
    this.consumer = resolved.groupOptions.consumer ?? uniqueConsumerName();
    this.connection = connectionOptions(resolved, this.connectionLogger);
  }

  /** The subscribers (one per pattern) and the reply publisher; throws before `listen()`. */
  unwrap<T = RedisStreamsServerParts>(): T {
    if (!this.publisher) throw new Error('Not initialized. Call listen() first.');
    const parts: RedisStreamsServerParts = {
      subscribers: this.subscribers,
      publisher: this.publisher,
    };
    return parts as T;
  }

  /**
   * Counters: `events` and `requests` handed to handlers, and
   * `unanswerable` requests (no reply stream in their id: acknowledged
   * without a handler, logged).
   */
  stats(): Readonly<Record<string, number>> {
    return { ...this.counters };
  }

  /** The stream of a route. */
  streamOf(route: string): string {
    return this.streamPrefix + route;
  }

  protected checkRoute(route: string, pattern: unknown): void {
    if (route.startsWith(REPLY_STREAM_INFIX)) {
      throw new InvalidPatternError(pattern, `${REPLY_STREAM_INFIX}* streams carry replies`);
    }
  }

  protected async start(routes: readonly string[]): Promise<void> {
    const options = this.options;
    this.publisher = new StreamPublisher<readonly string[]>({
      ...this.connection,
      stream: this.streamPrefix + REPLY_STREAM_INFIX,
      maxLen: options.replyMaxLen,
      encode: fields => fields,
    });
    this.connections.watch('publisher', this.publisher.status$);
    for (const route of routes) {
      const subscriber = new StreamSubscriber({
        ...this.connection,
        stream: this.streamOf(route),
        name: this.group,
        count: options.count,
        blockMs: options.blockMs,
        concurrency: options.concurrency,
        group: { ...options.groupOptions, name: this.group, consumer: this.consumer },
      });
      this.subscribers.set(route, subscriber);
      this.connections.watch(route, subscriber.status$);
    }
    await Promise.all(
      [...this.subscribers].map(([route, subscriber]) =>
        subscriber.subscribe(message => this.onEntry(route, message)),
      ),
    );
    await this.publisher.connection.whenReady();
  }

  protected async stop(): Promise<void> {
    const timeoutMs = this.closeTimeoutMs;
    await Promise.all(
      [...this.subscribers.values()].map(subscriber => subscriber.close({ timeoutMs })),
    );
    await this.publisher?.close();
    this.connections.close();
  }

  private async onEntry(route: string, message: StreamMessage): Promise<void> {
    let raw: unknown;
    try {
      raw = parseEntry(message.fields);
    } catch (error) {
      throw new StreamEntryError(PACKET_FIELD, (error as Error).message);
    }
    const deserialized = this.deserialize(raw, route);
    const packet = deserialized instanceof Promise ? await deserialized : deserialized;
    const context = new RedisStreamsContext([
      message.stream,
      message.id,
      message.deliveries,
      message.group,
      message.consumer,
      packet.metadata,
    ]);
    const id = packet.id;
    if (id === undefined || id === null) {
      this.counters.events++;
      await this.handleHeraldEvent(route, packet, context);
      return;
    }
    const replyTo = typeof id === 'string' ? this.replyAddressOf(id) : undefined;
    if (!replyTo?.startsWith(this.streamPrefix + REPLY_STREAM_INFIX)) {
      // Acknowledged: no handler could ever answer it.
      this.counters.unanswerable++;
      this.warnings.warn(
        `no-reply-stream:${message.stream}`,
        logLine(
          'microservice',
          'redis-no-reply-stream',
          'request has no reply stream in its id, acknowledged and dropped (counted as unanswerable)',
          { stream: message.stream, id: message.id, pattern: route },
        ),
      );
      return;
    }
    this.counters.requests++;
    await this.handleHeraldRequest(
      route,
      packet as HeraldIncomingPacket & { id: string },
      context,
      reply => this.reply(replyTo, reply),
    );
  }

  private async reply(stream: string, reply: WritePacket & { id: string }): Promise<void> {
    let json: string;
    try {
      json = jsonCodec.encode(this.serializeReply(reply));
    } catch (error) {
      this.reportError(error as Error, `reply ${reply.id}`);
      json = jsonCodec.encode(
        this.serializeReply({ id: reply.id, err: errorReply(error), isDisposed: true }),
      );
    }
    await this.publisher!.publishAndWait([PACKET_FIELD, json], stream);
  }
}
