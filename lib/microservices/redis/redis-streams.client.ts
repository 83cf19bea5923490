import { randomBytes } from 'node:crypto';
import { jsonCodec } from '../../common/json.codec.js';
import type { RedisConnectionOptions } from '../../transports/redis/redis.connection.js';
import { StreamPublisher } from '../../transports/redis/stream.publisher.js';
import { StreamSubscriber, type StreamMessage } from '../../transports/redis/stream.subscriber.js';
import { HeraldClient } from '../base/herald.client.js';
import type {
  ClientEventCatalog,
  ClientMessageCatalog,
  UntypedClientEvents,
  UntypedClientMessages,
} from '../microservice.catalog.js';
import { InvalidPatternError } from '../microservice.errors.js';
import { ConnectionStates } from '../../transports/redis/redis.connection-states.js';
import {
  connectionOptions,
  resolveRedisStreamsClientOptions,
  type RedisStreamsClientOptions,
  type ResolvedRedisStreamsClientOptions,
} from './redis-streams.options.js';
import { PACKET_FIELD, REPLY_STREAM_INFIX, parseEntry } from './redis-streams.wire.js';

const noop = (): void => undefined;

/** What `unwrap()` returns. @publicApi */
export interface RedisStreamsClientParts {
  readonly publisher: StreamPublisher<readonly string[]>;
  /** Reads this client's reply stream. */
  readonly replies: StreamSubscriber;
}

/**
 * The client of {@link RedisStreamsServer}, on the redis transport's
 * publisher and subscriber: `emit` resolves once the entry is written
 * (`XADD`, buffered and retried while Redis is away); `send` writes the
 * request and reads the reply from this client's own reply stream
 * (`<prefix>reply:<random>`, deleted at `close()`). Usable directly or
 * through `ClientsModule.register([{ name, customClass: RedisStreamsClient, options }])`.
 * @publicApi
 */
export class RedisStreamsClient<
  Events extends ClientEventCatalog<Events> = UntypedClientEvents,
  Messages extends ClientMessageCatalog<Messages> = UntypedClientMessages,
> extends HeraldClient<Events, Messages> {
  readonly streamPrefix: string;
  protected readonly replyAddress: string;
  private readonly connection: RedisConnectionOptions;
  private publisher?: StreamPublisher<readonly string[]>;
  private replies?: StreamSubscriber;
  private readonly connections = new ConnectionStates({
    connected: again => {
      if (again) this.events.emit('reconnect');
      this.setStatus('connected');
    },
    // The fold gives no cause: the connections' last logged failure is it.
    reconnecting: () => this.setStatus('reconnecting', this.connectionLogger.last),
  });
  private readonly replyTtlMs: number;
  private refreshTimer?: NodeJS.Timeout;

  private readonly options: ResolvedRedisStreamsClientOptions;

  constructor(options: RedisStreamsClientOptions = {}) {
    const resolved = resolveRedisStreamsClientOptions(options);
    super(resolved);
    this.options = resolved;
    this.replyTtlMs = resolved.replyTtlMs;
    this.streamPrefix = resolved.streamPrefix;
    this.replyAddress = `${this.streamPrefix}${REPLY_STREAM_INFIX}${randomBytes(8).toString('hex')}`;
    this.connection = connectionOptions(resolved, this.connectionLogger);
  }

  /** The stream this client's replies come on. */
  get replyStream(): string {
    return this.replyAddress;
  }

  /** The publisher and the reply reader; throws before the first `connect()`. */
  unwrap<T = RedisStreamsClientParts>(): T {
    if (!this.publisher || !this.replies) throw new Error('Not initialized. Call connect() first.');
    const parts: RedisStreamsClientParts = { publisher: this.publisher, replies: this.replies };
    return parts as T;
  }

  protected checkRoute(route: string, pattern: unknown): void {
    if (route.startsWith(REPLY_STREAM_INFIX)) {
      throw new InvalidPatternError(pattern, `${REPLY_STREAM_INFIX}* streams carry replies`);
    }
  }

  protected async open(): Promise<void> {
    if (!this.publisher) {
      this.publisher = new StreamPublisher<readonly string[]>({
        ...this.connection,
        stream: this.replyAddress,
        maxLen: this.options.maxLen,
        bufferSize: this.options.bufferSize,
        encode: fields => fields,
      });
      // A fresh stream only this client reads: from the start, so no reply
      // written before the first read is missed.
      this.replies = new StreamSubscriber({
        ...this.connection,
        stream: this.replyAddress,
        name: this.replyAddress,
        cursorPrefix: `${this.streamPrefix}cursor`,
        start: '0',
        blockMs: this.options.blockMs,
        handlerAttempts: 1,
      });
      this.connections.watch('publisher', this.publisher.status$);
      this.connections.watch('replies', this.replies.status$);
      this.refreshTimer = setInterval(() => void this.refreshReplyTtl(), this.replyTtlMs / 3);
      this.refreshTimer.unref();
      await this.replies.subscribe(message => this.onReply(message));
    }
    await this.publisher.connection.whenReady();
  }

  /** Keeps the reply stream and its cursor from expiring while this client lives. */
  private async refreshReplyTtl(): Promise<void> {
    const connection = this.publisher?.connection;
    if (!connection?.ready || !this.replies) return;
    try {
      await connection.client
        .multi()
        .pexpire(this.replyAddress, this.replyTtlMs)
        .pexpire(this.replies.cursorKey, this.replyTtlMs)
        .exec();
    } catch (error) {
      this.events.emit('error', error);
    }
  }

  private onReply(message: StreamMessage): void {
    let raw: unknown;
    try {
      raw = parseEntry(message.fields);
    } catch (error) {
      this.events.emit('error', error);
      return;
    }
    void this.receiveReply(raw);
  }

  protected async shut(): Promise<void> {
    clearInterval(this.refreshTimer);
    const replies = this.replies;
    const publisher = this.publisher;
    if (replies) await replies.close({ timeoutMs: 1000 });
    if (publisher) {
      // The reply stream and its cursor are this client's alone: remove them.
      if (publisher.connection.ready && replies) {
        await publisher.connection.client
          .del(this.replyAddress, replies.cursorKey)
          .catch((error: unknown) => this.events.emit('error', error));
      }
      await publisher.close();
    }
    this.connections.close();
  }

  protected async sendRequest(route: string, packet: unknown): Promise<void> {
    await this.write(route, packet);
  }

  protected sendEvent(route: string, packet: unknown): Promise<unknown> {
    return this.write(route, packet).then(noop);
  }

  private write(route: string, packet: unknown): Promise<string> {
    return this.publisher!.publishAndWait(
      [PACKET_FIELD, jsonCodec.encode(packet)],
      this.streamPrefix + route,
    );
  }
}
