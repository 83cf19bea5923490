import type { Observable } from 'rxjs';
import { describeError } from '../../common/describe-error.js';
import { logLine } from '../../common/log-line.js';
import { StateMachine } from '../../common/state-machine.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import { TransportClosedError } from '../../common/errors.js';
import type {
  PublishResult,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportState,
  TransportStatus,
} from '../../interfaces/transport.interface.js';
import { IpcBroker } from './ipc.broker.js';
import { IpcClient } from './ipc.client.js';
import {
  METADATA_ALLOWANCE_BYTES,
  RECONNECT_CAP_MS,
  RECONNECT_MAX_MS,
  RECONNECT_MIN_MS,
} from './ipc.constants.js';
import { BrokerLock } from './ipc.lock.js';
import {
  resolveIpcTransportOptions,
  type IpcTransportOptions,
  type ResolvedIpcTransportOptions,
} from './ipc.options.js';

/** Legal status changes of the ipc transport. */
const IPC_TRANSITIONS: { readonly [K in TransportState]: readonly TransportState[] } = {
  connecting: ['connected', 'reconnecting', 'disconnected', 'closed'],
  connected: ['disconnected', 'reconnecting', 'closed'],
  reconnecting: ['connected', 'disconnected', 'closed'],
  disconnected: ['connecting', 'reconnecting', 'connected', 'closed'],
  closed: [],
};

/**
 * Events among the worker processes of one host, through a broker on a unix
 * socket (Kong's lua-resty-events for Node). `post` reaches every worker,
 * the sender included, in one global order, and resolves once the broker
 * acknowledged it; `unique` events run in one worker of the host.
 *
 * Under node:cluster the primary hosts the broker ({@link startBroker});
 * with independent processes (pm2) they elect one of them (`failover`, the
 * default there): whoever holds the broker lock hosts it in-process, and
 * when it dies a survivor takes over. Options are validated here, at
 * construction.
 * @publicApi
 */
export class IpcTransport implements Transport {
  readonly name = 'ipc';
  readonly features: TransportFeatures;
  readonly options: ResolvedIpcTransportOptions;
  private role: 'broker' | 'worker';
  private context?: TransportContext;
  private limiter?: WarningLimiter;
  private electionTimer?: NodeJS.Timeout;
  private electionAttempts = 0;
  private electing = false;
  /** Broker lives this process hosted (1 after winning the first election, 2 after a later takeover...). */
  private elections = 0;
  /** The one status path: every change goes through `setState` (checked, logged at debug). */
  private readonly machine = new StateMachine<TransportState, { role: string }>(
    'ipc transport',
    'connecting',
    IPC_TRANSITIONS,
  );
  readonly status$: Observable<TransportStatus> = this.machine.status$;
  private hosted?: IpcBroker;
  private client?: IpcClient;
  private closed = false;
  private closing?: Promise<void>;

  constructor(options: IpcTransportOptions = {}) {
    this.options = resolveIpcTransportOptions(options);
    this.role = this.options.hostBroker && !this.options.failover ? 'broker' : 'worker';
    this.machine.setState('connecting', undefined, { role: this.role });
    this.features = {
      reach: 'host',
      guarantee: 'effectively-once',
      ordering: 'global',
      uniqueScope: 'host',
      maxPayloadBytes: this.options.maxPayloadBytes,
      redelivers: false,
      loopback: true,
      persistent: false,
    };
  }

  /** The broker this process hosts, if it hosts one. */
  get broker(): IpcBroker | undefined {
    return this.hosted;
  }

  async connect(context: TransportContext): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    if (this.client) throw new Error('ipc transport is already connected');
    const options = this.options;
    this.context = context;
    this.limiter = new WarningLimiter(context.logger, 10_000, context.clock);
    // The client first: a broker hosted here knows its session (its posts get witnesses).
    const client = new IpcClient({
      socketPath: options.socketPath,
      workerId: options.workerId,
      window: options.maxQueueLength,
      postTimeoutMs: options.postTimeoutMs,
      maxFrameBytes: options.maxPayloadBytes + METADATA_ALLOWANCE_BYTES,
      maxQueueLength: options.maxQueueLength,
      logger: context.logger,
      deliver: delivery => context.deliver(delivery),
    });
    // The client's status$ feeds ours (its 'closed' is our own close or a refused start, said by connect()).
    client.status$.subscribe(({ state, reason }) => {
      if (state === 'closed' || (state === 'connecting' && !reason)) return;
      this.setStatus(state, reason);
      if (state === 'reconnecting') this.scheduleElection();
    });
    this.client = client;
    try {
      if (options.failover) {
        // Whoever takes the lock first hosts; the others connect to it.
        const lock = await BrokerLock.tryAcquire(options.socketPath);
        if (lock) await this.host(lock);
      } else if (options.hostBroker) {
        await this.host();
      }
      if (!this.hosted) this.scheduleElection();
      await client.connect();
    } catch (error) {
      this.stopElection();
      await this.hosted?.close();
      this.hosted = undefined;
      this.client = undefined;
      this.setStatus('disconnected', describeError(error));
      throw error;
    }
  }

  /** Starts a broker in this process, under the lock (taken here when not given). */
  private async host(lock?: BrokerLock): Promise<void> {
    const context = this.context!;
    const options = this.options;
    const broker = new IpcBroker(
      {
        socketPath: options.socketPath,
        workerCount: options.workerCount,
        maxQueueLength: options.maxQueueLength,
        maxPayloadBytes: options.maxPayloadBytes,
        unique: context.unique,
      },
      { logger: context.logger, clock: context.clock },
    );
    broker.hostSession = this.client?.session;
    // The role first: our own client may connect (and report) while listen() is still in its chmod.
    const previousRole = this.role;
    this.role = 'broker';
    this.hosted = broker;
    try {
      // The socket directory and file checks run again here, for every new broker.
      await broker.listen(lock);
    } catch (error) {
      this.role = previousRole;
      this.hosted = undefined;
      throw error;
    }
    this.elections++;
  }

  /** While the broker is unreachable, tries (random back-off) to take the lock and host it here. */
  private scheduleElection(): void {
    if (!this.options.failover || this.closed || this.hosted || this.electionTimer) return;
    const spread = Math.min(
      RECONNECT_CAP_MS,
      RECONNECT_MAX_MS * 2 ** Math.min(this.electionAttempts, 10),
    );
    const delay = RECONNECT_MIN_MS + Math.random() * (spread - RECONNECT_MIN_MS);
    this.electionTimer = setTimeout(() => {
      this.electionTimer = undefined;
      void this.elect();
    }, delay);
  }

  private stopElection(): void {
    if (this.electionTimer) clearTimeout(this.electionTimer);
    this.electionTimer = undefined;
  }

  private async elect(): Promise<void> {
    const client = this.client;
    if (this.closed || this.hosted || this.electing || !client || client.isConnected) {
      this.electionAttempts = 0;
      return;
    }
    this.electing = true;
    this.electionAttempts++;
    const logger = this.context!.logger;
    try {
      const lock = await BrokerLock.tryAcquire(this.options.socketPath);
      if (lock && this.closed) {
        await lock.release();
      } else if (lock) {
        await this.host(lock);
        logger.warn(
          logLine(
            'ipc',
            'broker-elected',
            `this process took over as the broker (the previous broker went: ${this.machine.status.reason ?? 'connection lost'})`,
            {
              pid: process.pid,
              worker: this.options.workerId,
              socket: this.options.socketPath,
              elections: this.elections,
            },
          ),
        );
        this.electionAttempts = 0;
        // Whatever the interleaving: connected once our client is (it may already be).
        if (client.isConnected) this.setStatus('connected', 'elected broker');
        else this.setStatus('reconnecting', 'elected broker');
        client.retryNow();
        return;
      }
    } catch (error) {
      // E.g. the socket directory no longer passes the checks: said, and tried again later.
      this.limiter?.error(
        'election-failed',
        logLine(
          'ipc',
          'broker-election-failed',
          `cannot take over as the broker: ${describeError(error)}; trying again`,
          { worker: this.options.workerId, socket: this.options.socketPath },
        ),
      );
      this.setStatus('reconnecting', describeError(error));
    } finally {
      this.electing = false;
    }
    this.scheduleElection();
  }

  private setStatus(state: TransportState, reason?: string): void {
    if (this.closed && state !== 'closed') return;
    if (!this.machine.can(state)) {
      this.context?.logger.debug?.(
        `ipc transport: ignored ${this.machine.state} -> ${state}${reason ? ` (${reason})` : ''}`,
      );
      return;
    }
    this.machine.setState(state, reason, { role: this.role });
  }

  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    const client = this.client;
    if (this.closed || !client) {
      const error = new TransportClosedError(
        this.closed ? undefined : 'transport is not connected',
      );
      return Promise.resolve(batch.map(() => ({ ok: false, error })));
    }
    return client.publish(batch);
  }

  /** Whether this process hosts the broker now (it won an election, or `hostBroker`). */
  get isBroker(): boolean {
    return this.hosted !== undefined;
  }

  async stopIntake(): Promise<void> {
    this.client?.stopIntake();
  }

  stats(): Readonly<Record<string, number>> {
    const client = this.client;
    const stats: Record<string, number> = client
      ? { ...client.counters, inFlight: client.inFlight }
      : {};
    if (this.options.failover) stats.elections = this.elections;
    const broker = this.hosted;
    if (broker) {
      for (const [name, value] of Object.entries(broker.stats())) {
        stats[`broker${name[0].toUpperCase()}${name.slice(1)}`] = value;
      }
    }
    return stats;
  }

  /** Waits up to postTimeoutMs for the broker to acknowledge what was posted, then closes (and stops a hosted broker). */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.client?.close(this.options.postTimeoutMs);
    this.closed = true;
    this.stopElection();
    // What our broker still queues for the others is delivered first (bounded); the rest is counted and logged.
    await this.hosted?.close({ drainTimeoutMs: this.options.postTimeoutMs });
    this.machine.setState('closed', undefined, { role: this.role });
    this.machine.complete();
  }
}
