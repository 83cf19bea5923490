import type { Observable } from 'rxjs';
import { describeError } from '../../common/describe-error.js';
import { InvalidOptionsError, TransportClosedError } from '../../common/errors.js';
import { StateMachine } from '../../common/state-machine.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type {
  PublishResult,
  Settlement,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportState,
  TransportStatus,
} from '../../interfaces/transport.interface.js';
import { decodeEnvelopeFlat, encodeEnvelopeEntry } from './envelope.codec.js';
import { ConnectionStates } from './redis.connection-states.js';
import {
  resolveRedisTransportOptions,
  type RedisTransportOptions,
  type ResolvedRedisTransportOptions,
} from './redis.options.js';
import { StreamPublisher } from './stream.publisher.js';
import { StreamSubscriber, uniqueConsumerName, type StreamMessage } from './stream.subscriber.js';

const describe = describeError;

/** Any connection state may follow any other until `closed`, which is final. */
const TRANSPORT_TRANSITIONS: { readonly [S in TransportState]: readonly TransportState[] } = {
  connecting: ['connected', 'reconnecting', 'disconnected', 'closed'],
  connected: ['connecting', 'reconnecting', 'disconnected', 'closed'],
  reconnecting: ['connecting', 'connected', 'disconnected', 'closed'],
  disconnected: ['connecting', 'connected', 'reconnecting', 'closed'],
  closed: [],
};

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
  private readonly options: ResolvedRedisTransportOptions;
  /** The folded status of the publisher's and the reader's connections, then `closed`. */
  private readonly machine = new StateMachine<TransportState, { role: string }>(
    'redis transport',
    'connecting',
    TRANSPORT_TRANSITIONS,
  );
  /** Connection changes, folded over the publisher and the reader; `closed` last. */
  readonly status$: Observable<TransportStatus> = this.machine.status$;
  private states?: ConnectionStates;
  private publisher?: StreamPublisher<Envelope>;
  private subscriber?: StreamSubscriber;
  private context?: TransportContext;
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

  constructor(options: RedisTransportOptions = {}) {
    this.options = resolveRedisTransportOptions(options);
    this.stream = this.options.stream;
    this.mode = this.options.mode;
    const group = this.options.group;
    this.groupName =
      this.mode === 'work-queue'
        ? group
        : `${group}:${this.options.instance ?? uniqueConsumerName()}`;
    this.uniquePrefix = this.options.uniquePrefix;
  }

  async connect(context: TransportContext): Promise<void> {
    if (this.closing) throw new TransportClosedError();
    if (this.context) throw new InvalidOptionsError('redis transport is already connected');
    this.context = context;
    const options = this.options;
    this.machine.setState('connecting');
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
    const count = options.readCount;
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
    const timeoutMs = options.connectTimeoutMs;
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
    const states = new ConnectionStates({
      onStatus: status => {
        if (this.machine.is('connecting', 'connected', 'reconnecting', 'disconnected'))
          this.machine.setState(status.state, status.reason, { role: status.role });
      },
    });
    states.watch('publisher', this.publisher!.status$);
    states.watch('reader', this.subscriber!.status$);
    this.states = states;
  }

  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    const publisher = this.publisher;
    if (this.closing || !publisher) {
      const error = new TransportClosedError(
        this.closing ? undefined : 'transport is not connected',
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
    await this.subscriber?.close();
    const report = await this.publisher?.close();
    if (report && report.unsent > 0) {
      this.context?.logger.warn(
        `redis transport closed with ${report.unsent} event(s) not written`,
      );
    }
    this.context = undefined;
    this.states?.close();
    this.machine.setState('closed');
    this.machine.complete();
  }
}
