import { BehaviorSubject, type Observable, type Subscription } from 'rxjs';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import { InvalidOptionsError, TransportClosedError } from '../../common/errors.js';
import type {
  PublishResult,
  Settlement,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportStatus,
} from '../../interfaces/transport.interface.js';
import { decodeEnvelopeFlat, encodeEnvelopeEntry } from './envelope.codec.js';
import {
  DEFAULT_TRANSPORT_GROUP,
  DEFAULT_TRANSPORT_READ_COUNT,
  DEFAULT_TRANSPORT_STREAM,
  DEFAULT_UNIQUE_PREFIX,
} from './redis.constants.js';
import type { RedisTransportOptions } from './redis.options.js';
import { StreamPublisher } from './stream.publisher.js';
import { StreamSubscriber, uniqueConsumerName, type StreamMessage } from './stream.subscriber.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function prefixed(prefix: string, stats: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(stats)) out[`${prefix}.${name}`] = value;
  return out;
}

/**
 * The redis transport: envelopes go through one Redis stream, written by a
 * {@link StreamPublisher} (buffered, pipelined, retried in order) and read by
 * a {@link StreamSubscriber} in consumer-group mode, acknowledged only after
 * every handler settled. At-least-once: a nacked or unacknowledged event is
 * delivered again, then dead-lettered after `maxDeliveries`. `unique` events
 * run once across instances through `SET NX PX` (at-most-once for them).
 * @publicApi
 */
export class RedisTransport implements Transport {
  readonly name = 'redis';
  readonly features: TransportFeatures = {
    reach: 'network',
    guarantee: 'at-least-once',
    ordering: 'per-sender',
    uniqueScope: 'network',
    redelivers: true,
    loopback: true,
    persistent: true,
  };
  readonly stream: string;
  readonly mode: 'broadcast' | 'work-queue';
  readonly groupName: string;
  private readonly status = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
  readonly status$: Observable<TransportStatus> = this.status.asObservable();
  private publisher?: StreamPublisher<Envelope>;
  private subscriber?: StreamSubscriber;
  private context?: TransportContext;
  private subscriptions: Subscription[] = [];
  private closed = false;
  private closing?: Promise<void>;
  /** Deliveries wait behind a pending unique check so arrival order is kept. */
  private tail?: Promise<void>;
  private readonly uniquePrefix: string;
  private readonly counters = {
    published: 0,
    delivered: 0,
    acked: 0,
    nacked: 0,
    duplicates: 0,
    decodeErrors: 0,
  };

  constructor(private readonly options: RedisTransportOptions = {}) {
    this.stream = options.stream ?? DEFAULT_TRANSPORT_STREAM;
    if (typeof this.stream !== 'string' || this.stream === '')
      throw new InvalidOptionsError('redis.stream cannot be empty');
    this.mode = options.mode ?? 'broadcast';
    if (this.mode !== 'broadcast' && this.mode !== 'work-queue') {
      throw new InvalidOptionsError(
        `redis.mode must be 'broadcast' or 'work-queue', got '${String(this.mode)}'`,
      );
    }
    const group = options.group ?? DEFAULT_TRANSPORT_GROUP;
    if (typeof group !== 'string' || group === '')
      throw new InvalidOptionsError('redis.group cannot be empty');
    if (
      options.instance !== undefined &&
      (typeof options.instance !== 'string' || options.instance === '')
    ) {
      throw new InvalidOptionsError('redis.instance cannot be empty');
    }
    this.groupName =
      this.mode === 'work-queue' ? group : `${group}:${options.instance ?? uniqueConsumerName()}`;
    this.uniquePrefix = options.uniquePrefix ?? DEFAULT_UNIQUE_PREFIX;
  }

  async connect(context: TransportContext): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    if (this.context) throw new InvalidOptionsError('redis transport is already connected');
    this.context = context;
    const options = this.options;
    const connection = { url: options.url, redis: options.redis, logger: context.logger };
    this.publisher = new StreamPublisher<Envelope>({
      ...connection,
      stream: this.stream,
      encode: encodeEnvelopeEntry,
      maxLen: options.maxLen,
      bufferSize: options.bufferSize,
      drainInitialIntervalMs: options.drainInitialIntervalMs,
      drainMaxBackoffMs: options.drainMaxBackoffMs,
      shutdownDrainTimeoutMs: options.shutdownDrainTimeoutMs,
      drainBatchSize: options.drainBatchSize,
    });
    const count = options.readCount ?? DEFAULT_TRANSPORT_READ_COUNT;
    this.subscriber = new StreamSubscriber({
      ...connection,
      stream: this.stream,
      name: this.groupName,
      count,
      blockMs: options.blockMs,
      // The bus keeps order and its own concurrency: hand it everything read.
      concurrency: Number.POSITIVE_INFINITY,
      maxInFlight: options.maxInFlight ?? count * 2,
      deadLetterMaxLen: options.maxLen,
      readBackoffInitialMs: Math.min(options.drainInitialIntervalMs ?? 1000, 1000),
      group: {
        name: this.groupName,
        startId: options.startId,
        minIdleMs: options.minIdleMs,
        claimIntervalMs: options.claimIntervalMs,
        maxDeliveries: options.maxDeliveries,
        deadLetterStream: options.deadLetterStream,
        nackRetryDelayMs: options.nackRetryDelayMs,
        // A per-process broadcast group has no other reader: it goes with the process.
        destroyOnClose: this.mode === 'broadcast' && options.instance === undefined,
      },
    });
    this.watchStatus();
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TransportClosedError(
              `redis not reachable within ${timeoutMs} ms (${options.url ?? 'default url'})`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([
        Promise.all([
          this.subscriber.subscribeSettled((message, done) => this.receive(message, done)),
          this.publisher.connection.whenReady(),
        ]),
        timeout,
      ]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private watchStatus(): void {
    const states = new Map<string, TransportStatus>();
    const update = (role: string, status: TransportStatus): void => {
      states.set(role, status);
      if (this.closed) return;
      const all = [...states.values()];
      const down = all.find(s => s.state !== 'connected');
      const next: TransportStatus =
        states.size === 2 && !down
          ? { state: 'connected' }
          : {
              state: down?.state === 'closed' ? 'disconnected' : (down?.state ?? 'connecting'),
              role: down?.role,
              reason: down?.reason,
            };
      const current = this.status.value;
      if (current.state !== next.state) this.status.next(next);
    };
    this.subscriptions.push(
      this.publisher!.status$.subscribe(status => update('publisher', status)),
      this.subscriber!.status$.subscribe(status => update('reader', status)),
    );
  }

  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    const publisher = this.publisher;
    if (this.closed || !publisher) {
      const error = new TransportClosedError(
        this.closed ? undefined : 'transport is not connected',
      );
      return batch.map(() => ({ ok: false, error }));
    }
    this.counters.published += batch.length;
    const results = await publisher.publishAll(batch);
    return results.map((result): PublishResult =>
      typeof result === 'string' ? { ok: true, ref: result } : { ok: false, error: result },
    );
  }

  /** One entry from the stream: decoded, unique-checked, handed to the bus; settled when the bus settles it. */
  private receive(message: StreamMessage, done: (error?: unknown) => void): void {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelopeFlat(message.raw);
    } catch (error) {
      this.counters.decodeErrors++;
      this.context?.logger.error(
        `stream ${this.stream}: entry ${message.id} is not a herald event: ${describe(error)}`,
      );
      done(error); // a StreamEntryError: the subscriber dead-letters it
      return;
    }
    const deliver = (): void => {
      const context = this.context;
      if (!context) {
        done(new TransportClosedError());
        return;
      }
      this.counters.delivered++;
      context.deliver({
        envelope,
        attempt: message.deliveries,
        settle: (settlement: Settlement) => {
          if (settlement.outcome === 'ack') {
            this.counters.acked++;
            done();
          } else {
            this.counters.nacked++;
            done(settlement.error ?? new Error('nacked'));
          }
        },
      });
    };
    if (envelope.unique === undefined) {
      if (this.tail) this.chain(deliver);
      else deliver();
      return;
    }
    // Whoever sets the key first runs the event; the others (and repeats within the TTL) skip it.
    const key = `${this.uniquePrefix}:${this.stream}:${envelope.unique}`;
    const ttlMs = this.context?.unique.ttlMs ?? 2000;
    const claim = this.subscriber!.commands.client.set(key, envelope.origin, 'PX', ttlMs, 'NX');
    this.chain(async () => {
      let won: boolean;
      try {
        won = (await claim) === 'OK';
      } catch (error) {
        done(error);
        return;
      }
      if (won) {
        deliver();
      } else {
        this.counters.duplicates++;
        this.context?.logger.debug?.(`unique event is duplicate: ${envelope.unique}`);
        done();
      }
    });
  }

  private chain(step: () => void | Promise<void>): void {
    const next = (this.tail ?? Promise.resolve()).then(step);
    this.tail = next;
    void next.then(() => {
      if (this.tail === next) this.tail = undefined;
    });
  }

  async stopIntake(): Promise<void> {
    await this.subscriber?.stopIntake();
  }

  stats(): Readonly<Record<string, number>> {
    return {
      ...this.counters,
      ...(this.publisher ? prefixed('publisher', this.publisher.stats()) : {}),
      ...(this.subscriber ? prefixed('subscriber', this.subscriber.stats()) : {}),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    await this.subscriber?.close();
    const report = await this.publisher?.close();
    if (report && report.unsent > 0) {
      this.context?.logger.warn(
        `redis transport closed with ${report.unsent} event(s) not written`,
      );
    }
    this.context = undefined;
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.status.next({ state: 'closed' });
    this.status.complete();
  }
}
