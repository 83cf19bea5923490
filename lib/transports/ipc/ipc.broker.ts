import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import type { Observable } from 'rxjs';
import { systemClock, type Clock } from '../../common/clock.js';
import { describeError } from '../../common/describe-error.js';
import { QueueFullError } from '../../common/errors.js';
import { jsonCodec } from '../../common/json.codec.js';
import { logLine } from '../../common/log-line.js';
import { consoleLogger, type HeraldLogger } from '../../common/logger.js';
import { StateMachine } from '../../common/state-machine.js';
import { UniqueCache } from '../../common/unique-cache.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { EventHandler } from '../../interfaces/envelope.interface.js';
import { HeldPosts } from './ipc.backlog.js';
import { BrokerConnections } from './ipc.broker-connections.js';
import type {
  IpcBrokerEvents,
  IpcBrokerState,
  IpcBrokerStats,
  IpcBrokerStatus,
} from './ipc.broker.types.js';
import { encodeEventBody } from './ipc.codec.js';
import { METADATA_ALLOWANCE_BYTES } from './ipc.constants.js';
import { FrameWriter } from './ipc.frame.js';
import { BrokerLock } from './ipc.lock.js';
import { Offenders } from './ipc.offenders.js';
import {
  resolveIpcBrokerOptions,
  type IpcBrokerOptions,
  type ResolvedIpcBrokerOptions,
} from './ipc.options.js';
import { PrivilegedAgent } from './ipc.privileged.js';
import { WorkerQueues } from './ipc.queues.js';
import { ipcTestHooks, prepareSocketPath, secureSocket } from './ipc.socket.js';
import { WriteBatcher, writeAckDue } from './ipc.writes.js';

export type { IpcBrokerEvents, IpcBrokerState, IpcBrokerStats, IpcBrokerStatus };

/*
 * The broker's face and listening: its options and state, the socket and
 * lock, its own posts, the privileged agent, stats and close. Its parts are
 * files of their own: connection handling and the handshake
 * (ipc.broker-connections.ts), the worker queues and placement
 * (ipc.queues.ts), the back-pressure backlog (ipc.backlog.ts), the offenders
 * (ipc.offenders.ts) and the write batching (ipc.writes.ts).
 */

/** Requested accept queue length. */
const LISTEN_BACKLOG = 4096;

const BROKER_TRANSITIONS: { readonly [K in IpcBrokerState]: readonly IpcBrokerState[] } = {
  idle: ['listening', 'closing'],
  listening: ['closing'],
  closing: ['closed'],
  closed: [],
};

/**
 * The broker: one per host and app, on a unix socket. It keeps one queue
 * per worker id (not per connection, so events wait for a worker that
 * starts late or restarts), numbers what it sends to each worker, accepts
 * each poster's frames in sequence once (dropping resends), and puts every
 * event into every worker's queue at once, so all workers see one order.
 * A connected worker whose queue is full holds posters back (their posts
 * wait, then reject); a disconnected worker's full queue drops its oldest.
 * Its state changes go through one {@link StateMachine}: `status$` reports them.
 * @publicApi
 */
export class IpcBroker extends EventEmitter<IpcBrokerEvents> {
  readonly options: ResolvedIpcBrokerOptions;
  /** Changes with every broker life, so clients know their numbering restarted. */
  readonly session = randomUUID().slice(0, 8);
  private readonly logger: HeraldLogger;
  private readonly clock: Clock;
  private readonly limiter: WarningLimiter;
  private readonly machine: StateMachine<IpcBrokerState>;
  /** The broker's state changes (`idle` → `listening` → `closing` → `closed`), replayed to each subscriber. */
  readonly status$: Observable<IpcBrokerStatus>;
  private readonly queues: WorkerQueues;
  private readonly held: HeldPosts;
  private readonly offenders: Offenders;
  private readonly writes: WriteBatcher;
  private readonly connections: BrokerConnections;
  private readonly maxFrameBytes: number;
  private server?: net.Server;
  private lock?: BrokerLock;

  constructor(options: IpcBrokerOptions = {}, deps: { logger?: HeraldLogger; clock?: Clock } = {}) {
    super();
    this.options = resolveIpcBrokerOptions(options);
    this.logger = deps.logger ?? consoleLogger;
    this.clock = deps.clock ?? systemClock;
    this.machine = new StateMachine<IpcBrokerState>(
      'ipc broker',
      'idle',
      BROKER_TRANSITIONS,
      this.logger,
    );
    this.status$ = this.machine.status$;
    this.limiter = new WarningLimiter(this.logger, 10_000, this.clock);
    this.maxFrameBytes = this.options.maxPayloadBytes + METADATA_ALLOWANCE_BYTES;
    this.writes = new WriteBatcher(c => {
      writeAckDue(c);
      this.queues.writeDelivered(c);
    });
    this.queues = new WorkerQueues(
      this.options.workerCount,
      this.options.maxQueueLength,
      new UniqueCache(this.options.unique, this.clock),
      this.options.unique.ttlMs,
      { markDirty: c => this.writes.markDirty(c), roomMade: () => this.held.retry() },
      this.logger,
      this.limiter,
    );
    this.held = new HeldPosts(this.queues, this.clock, this.options.maxQueueLength);
    this.offenders = new Offenders(this.clock);
    this.connections = new BrokerConnections({
      options: this.options,
      session: this.session,
      maxFrameBytes: this.maxFrameBytes,
      queues: this.queues,
      held: this.held,
      offenders: this.offenders,
      writes: this.writes,
      events: this,
      logger: this.logger,
      limiter: this.limiter,
      clock: this.clock,
      isClosed: () => this.closed,
    });
    if (this.options.privileged)
      this.queues.agent = new PrivilegedAgent(
        this.options.maxQueueLength,
        this.logger,
        this.limiter,
      );
    // Every error is logged where it happens; without this listener an 'error'
    // event nobody subscribed to would also crash the process hosting the broker.
    this.on('error', () => undefined);
  }

  get socketPath(): string {
    return this.options.socketPath;
  }

  /** The current state (a read; `status$` reports the changes). */
  get state(): IpcBrokerState {
    return this.machine.state;
  }

  /** Ids of the workers connected now. */
  get connectedWorkers(): number[] {
    return this.queues.slots.filter(slot => slot.connection).map(slot => slot.id);
  }

  /**
   * The client session of the process hosting this broker (set by the
   * transport before `listen`): its posts are copied to witnesses, since
   * its own retained copies die with the broker. @internal
   */
  get hostSession(): string | undefined {
    return this.queues.hostSession;
  }

  set hostSession(session: string | undefined) {
    this.queues.hostSession = session;
  }

  private get closed(): boolean {
    return this.machine.is('closing', 'closed');
  }

  /**
   * Takes the broker lock (or uses the one given, already held), then binds
   * the socket after the directory and stale-socket checks; resolves when
   * listening. Throws `IpcSocketError` when another process holds the lock
   * or the checks fail; the lock is released again then.
   */
  async listen(lock?: BrokerLock): Promise<void> {
    if (this.server || this.lock) throw new Error('broker is already listening');
    const socketPath = this.options.socketPath;
    this.lock = lock ?? (await BrokerLock.acquire(socketPath));
    const server = net.createServer(socket => this.connections.accept(socket));
    try {
      // Only the lock holder gets here: the probe, unlink and bind cannot race another broker.
      await prepareSocketPath(socketPath);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // A deep accept queue for connect bursts (the kernel caps it at somaxconn); clients retry EAGAIN.
        server.listen({ path: socketPath, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await this.lock.release();
      this.lock = undefined;
      throw error;
    }
    this.server = server;
    server.on('error', error => {
      this.logger.error(
        logLine(
          'ipc',
          'broker-socket-error',
          `the broker's server socket failed: ${describeError(error)}`,
          {
            socket: socketPath,
          },
        ),
      );
      this.emit('error', error);
    });
    await ipcTestHooks.afterBind?.(socketPath);
    await secureSocket(socketPath);
    if (this.machine.can('listening')) this.machine.setState('listening', socketPath);
    this.emit('listening', socketPath);
  }

  /**
   * Posts an event from the broker itself (e.g. "all workers connected") to
   * every worker. Throws `QueueFullError`, sending nothing, when a connected
   * worker's queue is full.
   */
  post(source: string, event: string, data?: unknown): string {
    const full = this.queues.connectedFull();
    if (full) throw new QueueFullError(`worker #${full.id}`, this.options.maxQueueLength);
    const id = randomUUID();
    const w = new FrameWriter();
    encodeEventBody(w, {
      id,
      source,
      event,
      payload: jsonCodec.encode(data),
      origin: `broker/${process.pid}/${this.session}`,
      occurredAt: new Date(this.clock.now()).toISOString(),
    });
    this.queues.placeOwn(w.take());
    return id;
  }

  /**
   * Makes this process (e.g. the node:cluster primary) a privileged agent,
   * as lua-resty-events' `enable_privileged_agent`: outside the worker ids,
   * it receives every broadcast (not unique events, which run in one
   * worker) in the broker's order, its own posts included. Events wait in a
   * retained queue of its own (bounded by maxQueueLength, oldest dropped,
   * counted and logged) from the first `register` call on, until a handler
   * takes them; handlers run one event at a time, their errors logged and
   * counted. `source` and each of `events` may be `'*'`.
   * @returns a function that removes this handler.
   */
  register(handler: EventHandler, source = '*', ...events: string[]): () => void {
    this.queues.agent ??= new PrivilegedAgent(
      this.options.maxQueueLength,
      this.logger,
      this.limiter,
    );
    return this.queues.agent.register(handler, source, events);
  }

  stats(): IpcBrokerStats {
    const q = this.queues.counters;
    const agent = this.queues.agent?.stats();
    return {
      connections: this.connections.all.size,
      workersConnected: this.connectedWorkers.length,
      posted: q.posted,
      duplicates: q.duplicates,
      uniqueDropped: q.uniqueDropped,
      delivered: q.delivered,
      dropped: q.dropped,
      rejected: this.held.rejected,
      refusedFrames: this.connections.counters.refusedFrames,
      cutOff: this.offenders.cutOff,
      identityConflicts: this.connections.counters.identityConflicts,
      handshakeTimeouts: this.connections.counters.handshakeTimeouts,
      undeliverableAtClose: q.undeliverableAtClose,
      backlogHighWater: this.held.highWater,
      undeliveredHighWater: q.undeliveredHighWater,
      ...this.queues.queueStats(),
      ...(agent && {
        privilegedReceived: agent.received,
        privilegedHandled: agent.handled,
        privilegedHandlerErrors: agent.handlerErrors,
        privilegedDropped: agent.dropped,
        privilegedQueued: agent.queued,
      }),
    };
  }

  /** The high-water mark of each worker's queue, by worker id. */
  queueHighWaters(): number[] {
    return this.queues.slots.map(slot => slot.highWater);
  }

  /**
   * Closes the broker: new connections are refused at once; with
   * `drainTimeoutMs`, waits (at most that long) for the connected workers
   * (the broker's own process excepted, it is leaving) to acknowledge what
   * their queues hold; then counts and logs every event left with no copy
   * anywhere else (posters and witnesses keep copies of theirs and resend
   * them to the next broker); flushes, closes every connection and the
   * socket, removes the socket file and releases the lock.
   */
  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.machine.setState('closing');
    const drainTimeoutMs = options.drainTimeoutMs ?? 0;
    if (drainTimeoutMs > 0) {
      const deadline = this.clock.now() + drainTimeoutMs;
      while (this.queues.busy() && this.clock.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 5));
      }
    }
    const lost = this.queues.reportUndeliverable();
    this.limiter.flush();
    if (lost > 0) {
      this.logger.error(
        logLine(
          'ipc',
          'broker-close-lost',
          `closed with ${lost} queued event deliveries lost (counted in undeliverableAtClose)`,
          { lost },
        ),
      );
    }
    this.writes.flush();
    this.held.clear();
    const server = this.server;
    for (const c of this.connections.all) {
      c.closing = true;
      c.socket.end();
      setTimeout(() => c.socket.destroy(), 200).unref();
    }
    if (server) {
      await new Promise<void>(resolve => server.close(() => resolve()));
      await fs.unlink(this.options.socketPath).catch(() => undefined);
    }
    // Last: the next broker may only unlink and bind once this one is gone.
    await this.lock?.release();
    this.lock = undefined;
    this.machine.setState('closed');
    this.machine.complete();
    this.emit('closed');
  }
}
