// One role: the Transport port over Redis streams. Slightly over 400 lines because
// both entry layouts (herald, mainflux) share its connect, publish, receive and
// close paths; each layout's encoding lives in its own file.
import type { Observable } from 'rxjs';
import { EnvelopeRecord } from '../../common/envelope-record.js';
import { DEFAULT_MAX_PENDING } from '../../common/limits.js';
import { describeError } from '../../common/describe-error.js';
import { InvalidOptionsError, TransportClosedError } from '../../common/errors.js';
import { StateMachine } from '../../common/state-machine.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type {
  Delivery,
  PublishResult,
  Settlement,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportState,
  TransportStatus,
} from '../../interfaces/transport.interface.js';
import { logLine } from '../../common/log-line.js';
import {
  decodeEnvelopeFlat,
  encodeCompactParts,
  encodeEnvelopeParts,
  encodeEnvelopeValues,
  envelopeAffix,
} from './envelope.codec.js';
import { decodeMainfluxEntry, encodeMainfluxEntry } from './mainflux.layout.js';
import { CONNECTION_TRANSITIONS } from './redis.connection.js';
import { ConnectionStates } from './redis.connection-states.js';
import {
  resolveRedisTransportOptions,
  type RedisTransportOptions,
  type ResolvedRedisTransportOptions,
} from './redis.options.js';
import { StreamPublisher } from './stream.publisher.js';
import type { RawEntry } from './stream.entry.js';
import { StreamSubscriber, uniqueConsumerName, type Held } from './stream.subscriber.js';

const describe = describeError;

function prefixed(prefix: string, stats: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(stats)) out[`${prefix}.${name}`] = value;
  return out;
}

/** The counters of several subscribers (one per stream in layout `mainflux`), added up. */
function summed(all: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const stats of all)
    for (const [name, value] of Object.entries(stats)) out[name] = (out[name] ?? 0) + value;
  return out;
}

/** What the deliveries of one subscriber share: their way back, and the transport's counters. */
interface EntryReader {
  readonly subscriber: StreamSubscriber;
  readonly counters: { acked: number; nacked: number };
}

/**
 * One entry on its way to the bus, then handed to it, and in group mode the
 * subscriber's record of the entry too (made by the subscriber through
 * `subscribeEntries`' `hold`): an entry costs one object from the read to
 * the ack, no record beside the delivery, no settle closure (`settle` is
 * shared on the prototype). A fan-out read's entry settles through its
 * callback (`done`) instead.
 */
class EntryDelivery implements Delivery, Held {
  // Every field is set here, in one order, with its final kind of value (a
  // number stays a Smi, `envelope` an object from the start): one map for
  // every delivery, never a field added after construction.
  envelope: Envelope = UNDECODED;
  retryTimer: NodeJS.Timeout | undefined = undefined;
  slot = -1;
  out = false;
  attempt = 1;

  constructor(
    public entry: RawEntry,
    private readonly reader: EntryReader,
    private readonly done: ((error?: unknown) => void) | undefined,
  ) {}

  get stream(): string {
    return this.reader.subscriber.stream;
  }

  get id(): string {
    return this.entry[0];
  }

  settle(settlement: Settlement): void {
    if (settlement.outcome === 'ack') {
      this.reader.counters.acked++;
      this.finish();
    } else {
      this.reader.counters.nacked++;
      this.finish(settlement.error ?? new Error('nacked'));
    }
  }

  /** Settles the entry with its subscriber: acked without an error; else nacked, or dead-lettered if undecodable. */
  finish(error?: unknown): void {
    if (this.done) this.done(error);
    else this.reader.subscriber.settleEntry(this, this.attempt, error);
  }
}

/**
 * What a delivery holds until its entry is decoded (never handed to the
 * bus): an {@link EnvelopeRecord}, like the envelopes decoded and posted,
 * so the field keeps one map of value from the first delivery on.
 */
const UNDECODED: Envelope = new EnvelopeRecord('', '', '', '', '', '');

/** Shaped as a transport's reader and counters: a delivery's `reader` and a reader's `counters` keep one map each. */
const KEEP_READER = {
  subscriber: undefined as unknown as StreamSubscriber,
  counters: { published: 0, delivered: 0, acked: 0, nacked: 0, duplicates: 0, decodeErrors: 0 },
};

/**
 * Keeps the map of deliveries alive. V8 holds the map an object reaches by
 * its constructor's field stores only weakly (through the transition tree):
 * when no delivery is alive at a full collection (an idle transport; a
 * forced gc()), the map dies, and with it every optimized function that
 * checks for it (readGroup, add, dispatch, deliver, settleEntry, ...: "weak
 * objects"); the next deliveries build a fresh map whose fields start as
 * constants, and the first write to `slot`, `out`, `attempt`, `retryTimer`
 * generalizes them again, deoptimizing what was compiled meanwhile ("code
 * dependencies"). Seen in bench/redis-before-after.ts, herald after the
 * gc() that ends its warm-up: 18 optimizations in the next 20k events
 * (dispatch, deliver, handle, add, settleEntry, finish, EntryDelivery, ...);
 * 8 with this, none of the receive path's. This one delivery went through
 * the same writes as a real one, so its map is the one deliveries use,
 * fields already mutable; it is held by {@link RedisTransport} (a module
 * constant no function reads is not kept by V8).
 */
const KEEP_MAP = new EntryDelivery(['0-0', null], KEEP_READER, undefined);
KEEP_MAP.slot = 0;
KEEP_MAP.out = true;
KEEP_MAP.attempt = 2;
KEEP_MAP.retryTimer = undefined;
KEEP_MAP.envelope = UNDECODED;
KEEP_MAP.slot = -1;
KEEP_MAP.out = false;
KEEP_MAP.attempt = 1;

const NO_FIELDS: readonly string[] = [];

/**
 * A write's result. A class, not an object literal: V8 pretenures a
 * literal's allocation site when a scavenge finds nearly all it made since
 * the last one alive, and a write's results are made 1000 at a time and
 * kept until every post of the batch took its own (`--allow-natives-syntax`
 * probe, bench/redis-before-after.ts herald, 60k events: in the runs that
 * went bad, 59,000 of 62,000 results were made in the old generation, and
 * the posts' envelopes too). Constructor calls have no allocation site.
 */
class Written {
  readonly ok = true;
  constructor(readonly ref: string) {}
}

/** Own posts awaiting their copy, by `<stream>@<entry id>` (layout `mainflux` has no id field). */
const OWN_IDS_BOUND = 10_000;

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
  /** Holds {@link KEEP_MAP} (see there). */
  private static readonly keptDelivery = KEEP_MAP;
  readonly name = 'redis';
  readonly features: TransportFeatures;
  /**
   * Batches of 500 posts, half the bus's 1000: with two writes in flight
   * (StreamPublisher's writesInFlight), Redis writes one batch while the
   * posts that the last answered batch settled post again. 1000 posts in
   * one batch left Redis waiting while they were posted, and the app
   * waiting while Redis wrote them.
   */
  readonly publishBatchSize = 500;
  readonly stream: string;
  /** The streams read: `[stream]`, or layout `mainflux`'s `streams`. */
  readonly streams: readonly string[];
  readonly layout: 'herald' | 'mainflux';
  readonly mode: 'broadcast' | 'work-queue';
  readonly groupName: string;
  private readonly options: ResolvedRedisTransportOptions;
  /** The folded status of the publisher's and the reader's connections, then `closed`. */
  private readonly machine = new StateMachine<TransportState, { role: string }>(
    'redis transport',
    'connecting',
    CONNECTION_TRANSITIONS,
  );
  /** Connection changes, folded over the publisher and the reader; `closed` last. */
  readonly status$: Observable<TransportStatus> = this.machine.status$;
  private states?: ConnectionStates;
  private publisher?: StreamPublisher<Envelope>;
  private subscribers: StreamSubscriber[] = [];
  /** Layout `mainflux`: this process's posts by entry, so their copies keep the post's id. */
  private readonly ownIds = new Map<string, { id: string; origin: string }>();
  /** Layout `mainflux`: publishes whose entry ids are not known yet. */
  private readonly writing = new Set<Promise<void>>();
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
    this.layout = this.options.layout;
    this.streams = this.layout === 'mainflux' ? this.options.streams : [this.stream];
    this.mode = this.options.mode;
    const group = this.options.group;
    this.groupName =
      this.mode === 'work-queue'
        ? group
        : `${group}:${this.options.instance ?? uniqueConsumerName()}`;
    this.uniquePrefix = this.options.uniquePrefix;
    this.features = {
      reach: 'network',
      guarantee: 'at-least-once',
      ordering: 'per-sender',
      uniqueScope: 'network',
      redelivers: true,
      // intake: false reads nothing, its own posts included.
      loopback: this.options.intake,
      persistent: true,
    };
  }

  async connect(context: TransportContext): Promise<void> {
    if (this.closing) throw new TransportClosedError();
    if (this.context) throw new InvalidOptionsError('redis transport is already connected');
    this.context = context;
    const options = this.options;
    this.machine.setState('connecting');
    const connection = {
      url: options.url,
      redis: options.redis,
      cluster: options.cluster,
      clusterOptions: options.clusterOptions,
      logger: context.logger,
    };
    this.publisher = new StreamPublisher<Envelope>({
      ...connection,
      stream: this.streams[0] ?? this.stream,
      ...(this.layout === 'mainflux'
        ? { encode: encodeMainfluxEntry }
        : options.heraldEntry === 'two-field'
          ? // A common header's members after the id go once per run of posts (the affix).
            { encode: encodeEnvelopeValues, affix: envelopeAffix, encodeOnWrite: true }
          : // The value in parts: no joined string per post (see encodeEnvelopeParts).
            // Encoded as written: a post waiting for its write keeps its envelope
            // anyway, and no entry beside it (less for each scavenge to copy).
            {
              encode:
                options.heraldEntry === 'one-field' ? encodeEnvelopeParts : encodeCompactParts,
              encodeOnWrite: true,
            }),
      maxLen: options.maxLen,
      bufferSize: options.bufferSize,
      drainInitialIntervalMs: options.drainInitialIntervalMs,
      drainMaxBackoffMs: options.drainMaxBackoffMs,
      shutdownDrainTimeoutMs: options.shutdownDrainTimeoutMs,
      drainBatchSize: options.drainBatchSize,
      waitReplicas: options.waitReplicas,
      waitTimeoutMs: options.waitTimeoutMs,
    });
    // intake: false publishes only: no group, no reader connection.
    this.subscribers = options.intake
      ? this.streams.map(stream => this.makeSubscriber(stream, connection))
      : [];
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
          ...this.subscribers.map(subscriber => {
            const reader: EntryReader = { subscriber, counters: this.counters };
            return subscriber.group
              ? // Group mode: each entry's delivery is its record; no message, task or closure per entry.
                subscriber.subscribeEntries<EntryDelivery>(
                  (entry, delivery, deliveries) => {
                    delivery.attempt = deliveries;
                    this.receive(delivery, entry[1] ?? NO_FIELDS);
                  },
                  entry => new EntryDelivery(entry, reader, undefined),
                )
              : subscriber.subscribeSettled((message, done) => {
                  const delivery = new EntryDelivery([message.id, null], reader, done);
                  delivery.attempt = message.deliveries;
                  this.receive(delivery, message.raw);
                });
          }),
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

  /**
   * The reader of one stream: a consumer group (layout `herald`, and
   * `mainflux` in work-queue mode) or, for layout `mainflux` in broadcast
   * mode, an `XREAD` reader on the Go subscriber's cursor key.
   */
  private makeSubscriber(
    stream: string,
    connection: Pick<
      ResolvedRedisTransportOptions,
      'url' | 'redis' | 'cluster' | 'clusterOptions' | 'logger'
    >,
  ): StreamSubscriber {
    const options = this.options;
    const count = options.readCount;
    const common = {
      ...connection,
      stream,
      count,
      blockMs: options.blockMs,
      // The bus keeps order and its own concurrency: hand it everything read.
      concurrency: Number.POSITIVE_INFINITY,
      // Three reads' worth (two ahead while behind), within the bus's default buffer; never
      // less than the two of earlier versions.
      maxInFlight:
        options.maxInFlight ?? Math.max(count * 2, Math.min(count * 3, DEFAULT_MAX_PENDING)),
      deadLetterMaxLen: options.maxLen,
      readBackoffInitialMs: Math.min(options.drainInitialIntervalMs ?? 1000, 1000),
    };
    if (this.layout === 'mainflux' && this.mode === 'broadcast') {
      return new StreamSubscriber({
        ...common,
        name: options.instance!,
        start: options.startId,
      });
    }
    return new StreamSubscriber({
      ...common,
      name: this.groupName,
      group: {
        name: this.groupName,
        ...(options.consumer !== undefined && { consumer: options.consumer }),
        startId: options.startId,
        minIdleMs: options.minIdleMs,
        claimIntervalMs: options.claimIntervalMs,
        maxDeliveries: options.maxDeliveries,
        deadLetterStream: this.layout === 'herald' ? options.deadLetterStream : undefined,
        nackRetryDelayMs: options.nackRetryDelayMs,
        // A per-process broadcast group has no other reader: it goes with the process.
        destroyOnClose: this.mode === 'broadcast' && options.instance === undefined,
      },
    });
  }

  private watchStatus(): void {
    const states = new ConnectionStates({
      onStatus: status => {
        if (this.machine.is('connecting', 'connected', 'reconnecting', 'disconnected'))
          this.machine.setState(status.state, status.reason, { role: status.role });
      },
    });
    states.watch('publisher', this.publisher!.status$);
    for (const subscriber of this.subscribers)
      states.watch(
        this.subscribers.length === 1 ? 'reader' : `reader ${subscriber.stream}`,
        subscriber.status$,
      );
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
    if (this.layout === 'herald') {
      const results = await publisher.publishAll(batch);
      return results.map((result): PublishResult =>
        typeof result === 'string' ? new Written(result) : { ok: false, error: result },
      );
    }
    // Layout mainflux: the source is the stream; each stream's run keeps its order.
    const writing = Promise.all(
      batch.map(envelope => publisher.publishAll([envelope], envelope.source)),
    ).then(results =>
      // Recorded in the same step that settles the write: a copy read meanwhile finds it.
      results.map(([result], i): PublishResult => {
        if (typeof result !== 'string') return { ok: false, error: result };
        const envelope = batch[i];
        this.ownIds.set(`${envelope.source}@${result}`, {
          id: envelope.id,
          origin: envelope.origin,
        });
        if (this.ownIds.size > OWN_IDS_BOUND) this.ownIds.delete(this.ownIds.keys().next().value!);
        return { ok: true, ref: result };
      }),
    );
    const settled = writing.then(
      () => undefined,
      () => undefined,
    );
    this.writing.add(settled);
    try {
      return await writing;
    } finally {
      this.writing.delete(settled);
    }
  }

  /** An entry as an envelope, in the transport's layout. */
  private decode(delivery: EntryDelivery, raw: readonly string[]): Envelope {
    if (this.layout === 'herald') return decodeEnvelopeFlat(raw);
    const envelope = decodeMainfluxEntry(delivery.stream, delivery.id, raw);
    const own = this.ownIds.get(envelope.id);
    if (!own) return envelope;
    this.ownIds.delete(envelope.id);
    return { ...envelope, id: own.id, origin: own.origin };
  }

  /** One entry from the stream: decoded, unique-checked, handed to the bus; settled when the bus settles it. */
  private receive(delivery: EntryDelivery, raw: readonly string[]): void {
    // Layout mainflux: a copy of our own post may be read before its XADD's reply
    // came back; it waits for the writes in flight, so it keeps the post's id.
    if (this.writing.size > 0 && this.layout === 'mainflux') {
      const writes = Promise.all(this.writing);
      this.chain(async () => {
        await writes;
        this.accept(delivery, raw);
      });
      return;
    }
    this.accept(delivery, raw);
  }

  private accept(delivery: EntryDelivery, raw: readonly string[]): void {
    let envelope: Envelope;
    try {
      envelope = this.decode(delivery, raw);
    } catch (error) {
      this.counters.decodeErrors++;
      this.context?.logger.error(
        logLine(
          'redis',
          'entry-not-an-event',
          `entry is not a ${this.layout} event, dead-lettered (group) or skipped (fan-out): ${describe(error)}`,
          { stream: delivery.stream, id: delivery.id },
        ),
      );
      delivery.finish(error); // a StreamEntryError: the subscriber dead-letters it
      return;
    }
    delivery.envelope = envelope;
    if (envelope.unique === undefined) {
      if (this.tail) this.chain(() => this.deliver(delivery));
      else this.deliver(delivery);
      return;
    }
    // Whoever sets the key first runs the event; the others (and repeats within the TTL) skip it.
    const key = `${this.uniquePrefix}:${this.stream}:${envelope.unique}`;
    const ttlMs = this.context?.unique.ttlMs ?? 2000;
    const claim = this.subscribers[0].commands.client.set(key, envelope.origin, 'PX', ttlMs, 'NX');
    this.chain(async () => {
      let won: boolean;
      try {
        won = (await claim) === 'OK';
      } catch (error) {
        delivery.finish(error);
        return;
      }
      if (won) {
        this.deliver(delivery);
      } else {
        this.counters.duplicates++;
        this.context?.logger.debug?.(`unique event is duplicate: ${envelope.unique}`);
        delivery.finish();
      }
    });
  }

  /** Hands an envelope to the bus; the entry settles when the bus settles it. */
  private deliver(delivery: EntryDelivery): void {
    const context = this.context;
    if (!context) {
      delivery.finish(new TransportClosedError());
      return;
    }
    this.counters.delivered++;
    context.deliver(delivery);
  }

  private chain(step: () => void | Promise<void>): void {
    const next = (this.tail ?? Promise.resolve()).then(step);
    this.tail = next;
    void next.then(() => {
      if (this.tail === next) this.tail = undefined;
    });
  }

  async stopIntake(): Promise<void> {
    await Promise.all(this.subscribers.map(subscriber => subscriber.stopIntake()));
  }

  /**
   * `published`, `delivered`, `acked`, `nacked`, `duplicates`,
   * `decodeErrors`; `publisher.*` and `subscriber.*` (added up over the
   * streams of layout `mainflux`); `subscriberLag`, the entries the group
   * has not read yet (group mode, Redis 7, refreshed every
   * `claimIntervalMs`), which the `nest-herald/terminus` indicator checks
   * against its `maxLag`.
   */
  stats(): Readonly<Record<string, number>> {
    const subscribers = this.subscribers.length
      ? summed(this.subscribers.map(subscriber => subscriber.stats()))
      : undefined;
    return {
      ...this.counters,
      ...(this.publisher ? prefixed('publisher', this.publisher.stats()) : {}),
      ...(subscribers ? prefixed('subscriber', subscribers) : {}),
      // What the terminus indicator reads (group mode, Redis 7): entries the group(s) have not read yet.
      ...(subscribers?.lag !== undefined ? { subscriberLag: subscribers.lag } : {}),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.all(this.subscribers.map(subscriber => subscriber.close()));
    // The publisher logs what it could not write (publisher-closed-unwritten).
    await this.publisher?.close();
    this.context = undefined;
    this.states?.close();
    this.machine.setState('closed');
    this.machine.complete();
  }
}
