// One role at 430 lines: reading the broker's frames and the handshake that ties the
// connector, outbound and inbound parts together (they are files of their own).
import { randomUUID } from 'node:crypto';
import type net from 'node:net';
import type { Observable } from 'rxjs';
import { skip } from 'rxjs';
import { describeError } from '../../common/describe-error.js';
import { QueueFullError, TransportClosedError } from '../../common/errors.js';
import { logLine } from '../../common/log-line.js';
import { StateMachine } from '../../common/state-machine.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type {
  PublishResult,
  TransportState,
  TransportStatus,
} from '../../interfaces/transport.interface.js';
import { Connector } from './ipc.connector.js';
import { FrameType, MAX_PAYLOAD_LIMIT, METADATA_ALLOWANCE_BYTES } from './ipc.constants.js';
import { IpcFrameRefusedError, IpcProtocolError } from './ipc.errors.js';
import { BodyReader, FrameReader, FrameWriter } from './ipc.frame.js';
import { readWelcome, writeHello } from './ipc.handshake.js';
import { Inbound } from './ipc.inbound.js';
import {
  resolveIpcClientOptions,
  type IpcClientOptions,
  type ResolvedIpcClientOptions,
} from './ipc.options.js';
import { Outbound } from './ipc.outbound.js';

export type { IpcClientOptions };

/** Seq numbers are 48-bit on the wire; a worker may read up to the broker's largest frame. */
const MAX_INCOMING_FRAME = MAX_PAYLOAD_LIMIT + METADATA_ALLOWANCE_BYTES + 64;

/**
 * The client's states. `connecting` until the first handshake; `connected`;
 * on a lost connection `disconnected` then `reconnecting` (each with the
 * reason) until the next handshake; `closed` at the end, or at once when the
 * first connection is refused for good.
 */
const CLIENT_TRANSITIONS: { readonly [K in TransportState]: readonly TransportState[] } = {
  connecting: ['connected', 'closed'],
  connected: ['disconnected', 'closed'],
  disconnected: ['reconnecting', 'closed'],
  reconnecting: ['connected', 'closed'],
  closed: [],
};

/**
 * The worker side of the ipc protocol: one connection to the broker, with
 * a sequence number on every event frame, resend of what the broker has not
 * acknowledged after a reconnect, and a cumulative ack of what this
 * worker's handlers settled. Reconnects with a random back-off. Its parts:
 * the connector (ipc.connector.ts), the outbound side (ipc.outbound.ts,
 * ipc.retained.ts) and the inbound side (ipc.inbound.ts); this class reads
 * the frames, runs the handshake and keeps the state.
 */
export class IpcClient {
  /** Per-process identity of this client: the broker drops resends by session + seq. */
  readonly session = randomUUID();
  private readonly options: ResolvedIpcClientOptions;
  private readonly machine: StateMachine<TransportState>;
  /** The client's state changes, each with its reason; replays the current one. */
  readonly status$: Observable<TransportStatus>;
  private readonly reader = new FrameReader(MAX_INCOMING_FRAME);
  private readonly body = new BodyReader();
  private readonly control = new FrameWriter();
  private readonly connector: Connector;
  private readonly outbound: Outbound;
  private readonly inbound: Inbound;
  private readonly limiter: WarningLimiter;
  private flushScheduled = false;
  private readonly flushBound = (): void => this.flush();
  /** The life of the broker last welcomed by (undefined before the first handshake). */
  private brokerSession?: string;
  private firstConnect?: { resolve(): void; reject(error: Error): void };
  /** When the connection was lost, and why (for the recovery line). */
  private lost?: { at: number; reason: string };
  private refusedFrames = 0;
  private reconnects = 0;
  private witnessReplayed = 0;

  constructor(options: IpcClientOptions) {
    this.options = resolveIpcClientOptions(options);
    const logger = this.options.logger;
    this.limiter = new WarningLimiter(logger);
    this.machine = new StateMachine<TransportState>(
      `ipc client #${this.options.workerId}`,
      'connecting',
      CLIENT_TRANSITIONS,
      logger,
    );
    this.status$ = this.machine.status$;
    const status = this.options.status;
    // The deprecated callback, fed from status$ (changes only, as before).
    if (status) this.status$.pipe(skip(1)).subscribe(s => status(s.state, s.reason));
    const scheduleFlush = (): void => this.scheduleFlush();
    this.outbound = new Outbound(
      { scheduleFlush, limiter: this.limiter },
      this.options.maxQueueLength,
      this.options.postTimeoutMs,
      this.options.maxFrameBytes,
    );
    this.inbound = new Inbound({
      deliver: this.options.deliver,
      scheduleFlush,
      logger,
      limiter: this.limiter,
      copyLimit: () => 2 * this.options.maxQueueLength + this.outbound.sendWindow,
    });
    this.connector = new Connector(
      this.options.socketPath,
      {
        opened: socket => this.sendHello(socket),
        data: chunk => this.onData(chunk),
        closed: () => this.onClose(),
        unsafe: error => this.onUnsafe(error),
      },
      logger,
    );
  }

  get isConnected(): boolean {
    return this.machine.state === 'connected';
  }

  /** Counters of the client and its parts. */
  get counters(): Readonly<Record<string, number>> {
    return {
      ...this.outbound.counters,
      ...this.outbound.retained.counters,
      ...this.inbound.counters,
      refusedFrames: this.refusedFrames,
      reconnects: this.reconnects,
      witnessReplayed: this.witnessReplayed,
    };
  }

  /** Resolves on the first handshake; rejects when the socket fails the safety checks. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      this.connector.start();
    });
  }

  /** Tries to connect now instead of at the end of the back-off (a broker just started here). */
  retryNow(): void {
    this.connector.retryNow();
  }

  private onUnsafe(error: Error): boolean {
    if (!this.firstConnect || this.brokerSession !== undefined) return false;
    this.firstConnect.reject(error);
    this.firstConnect = undefined;
    this.machine.setState('closed', describeError(error));
    return true;
  }

  private sendHello(socket: net.Socket): void {
    writeHello(this.control, {
      workerId: this.options.workerId,
      pid: process.pid,
      lastReceived: this.inbound.lastReceived,
      ackedSeq: this.outbound.ackedSeq,
      window: this.options.window,
      postTimeoutMs: this.options.postTimeoutMs,
      session: this.session,
    });
    socket.write(this.control.take());
  }

  private onData(chunk: Buffer): void {
    const reader = this.reader;
    reader.push(chunk);
    try {
      while (reader.next()) {
        this.handleFrame(this.body.reset(reader.buf, reader.start, reader.end), reader.type);
        reader.consume();
      }
    } catch (error) {
      this.options.logger.error(
        logLine(
          'ipc',
          'broker-bad-frame',
          `bad frame from the broker: ${describeError(error)}; reconnecting`,
          {
            worker: this.options.workerId,
          },
        ),
      );
      this.connector.socket?.destroy();
    }
  }

  private handleFrame(r: BodyReader, type: number): void {
    switch (type) {
      case FrameType.Welcome:
        return this.welcome(r);
      case FrameType.Deliver:
        return this.inbound.incoming(r);
      case FrameType.Ack: {
        const seq = r.u48('seq');
        r.done('ack');
        return this.outbound.ackedUpTo(seq);
      }
      case FrameType.Delivered: {
        const seq = r.u48('seq');
        r.done('delivered');
        return this.outbound.retained.deliveredUpTo(seq);
      }
      case FrameType.Witnessed: {
        const seq = r.u48('seq');
        r.done('witnessed');
        return this.outbound.retained.witnessedUpTo(seq);
      }
      case FrameType.Released: {
        const seq = r.u48('seq');
        r.done('released');
        return this.inbound.released(seq);
      }
      case FrameType.Reject: {
        const seq = r.u48('seq');
        r.str('reason');
        const frame = this.outbound.find(seq);
        if (frame && !frame.error) {
          this.outbound.counters.rejected++;
          frame.error = new QueueFullError(
            'ipc broker queue of a connected worker',
            this.options.maxQueueLength,
          );
        }
        return;
      }
      case FrameType.Refuse:
        return this.refused(r.u48('seq'), r.str('reason'));
      default:
        throw new IpcProtocolError(`unexpected frame type ${type}`);
    }
  }

  private refused(seq: number, reason: string): void {
    this.refusedFrames++;
    this.options.logger.error(
      logLine('ipc', 'refused-by-broker', `the broker refused a frame: ${reason}`, {
        worker: this.options.workerId,
        seq,
      }),
    );
    const frame = seq > 0 ? this.outbound.find(seq) : undefined;
    // Never resent: the post fails with the broker's reason.
    if (frame && !frame.finished)
      this.outbound.finish(
        frame,
        new IpcFrameRefusedError(`the ipc broker refused this event: ${reason}`),
      );
    if (this.machine.state === 'connecting' && this.firstConnect) {
      // The handshake itself was refused at start-up (e.g. a worker id the broker does not know):
      // a configuration error to report, not a reason to retry forever.
      this.firstConnect.reject(
        new IpcFrameRefusedError(`the ipc broker refused this worker: ${reason}`),
      );
      this.firstConnect = undefined;
      this.machine.setState('closed', `refused: ${reason}`);
      this.connector.stop();
      this.connector.socket?.destroy();
    }
  }

  private welcome(r: BodyReader): void {
    const welcome = readWelcome(r);
    const logger = this.options.logger;
    const previous = this.brokerSession;
    const newBroker = welcome.brokerSession !== previous;
    let replayCopies: Envelope[] = [];
    if (newBroker) {
      replayCopies = this.inbound.newBrokerLife();
      if (previous !== undefined) {
        // Posts of the dead broker's process this process keeps: the new broker gets them from here.
        this.witnessReplayed += replayCopies.length;
        logger.warn(
          logLine(
            'ipc',
            'broker-replaced',
            `a new broker replaced the one that went; resending the events it had not delivered everywhere`,
            {
              broker: welcome.brokerSession,
              previous,
              resent: this.outbound.retained.length,
              witnessCopies: replayCopies.length,
              worker: this.options.workerId,
            },
          ),
        );
      }
      this.brokerSession = welcome.brokerSession;
    }
    this.outbound.retained.hosting = welcome.host;
    this.outbound.welcomed(welcome.lastSeqIn, welcome.sendWindow, welcome.maxFrameBytes, newBroker);
    this.inbound.reconnected();
    this.connector.connected();
    if (this.lost) {
      logger.log(
        logLine(
          'ipc',
          'broker-recovered',
          `connected to the broker again after ${Date.now() - this.lost.at} ms`,
          {
            downtimeMs: Date.now() - this.lost.at,
            cause: this.lost.reason,
            newBroker: newBroker,
            worker: this.options.workerId,
          },
        ),
      );
      this.lost = undefined;
    }
    this.machine.setState(
      'connected',
      newBroker && previous !== undefined ? 'new broker' : undefined,
    );
    if (replayCopies.length > 0) void this.publish(replayCopies);
    this.outbound.resume();
    this.scheduleFlush();
    if (this.firstConnect) {
      this.firstConnect.resolve();
      this.firstConnect = undefined;
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushBound);
  }

  private flush(): void {
    this.flushScheduled = false;
    const socket = this.connector.socket;
    const out = this.outbound.out;
    if (!this.isConnected || !socket) {
      out.length = 0;
      return;
    }
    const ack = this.inbound.takeAck();
    if (ack > 0) {
      const w = this.control;
      w.begin(FrameType.Ack);
      w.u48(ack);
      w.end();
      out.push(w.take());
    }
    if (out.length === 0) return;
    if (out.length === 1) {
      socket.write(out[0]);
    } else {
      socket.cork();
      for (const chunk of out) socket.write(chunk);
      socket.uncork();
    }
    out.length = 0;
  }

  private onClose(): void {
    this.reader.reset();
    this.outbound.disconnected();
    if (this.machine.state !== 'connected') return;
    const reason = 'connection to the broker closed';
    this.reconnects++;
    this.lost = { at: Date.now(), reason };
    this.options.logger.warn(
      logLine('ipc', 'broker-lost', `lost the connection to the broker (${reason}); reconnecting`, {
        worker: this.options.workerId,
        broker: this.brokerSession,
      }),
    );
    this.machine.setState('disconnected', reason);
    this.machine.setState('reconnecting', reason);
  }

  /** Stops handing events to the bus; undelivered ones stay with the broker for this worker id. */
  stopIntake(): void {
    this.inbound.intake = false;
  }

  /** Unacknowledged posts in flight. */
  get inFlight(): number {
    return this.outbound.inFlight;
  }

  /** Queues a batch for sending; resolves with one result per envelope once the broker answered each. */
  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (this.machine.state === 'closed') {
      const error = new TransportClosedError();
      return Promise.resolve(batch.map(() => ({ ok: false, error })));
    }
    return this.outbound.publish(batch);
  }

  /**
   * Waits (at most `timeoutMs`) for the broker to acknowledge every post,
   * also through a reconnect or a failover in between, then closes.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.machine.state === 'closed') return;
    if (this.brokerSession !== undefined) await this.outbound.idle(timeoutMs);
    if (this.machine.is('closed')) return;
    this.machine.setState('closed', 'closed by the application');
    this.connector.stop();
    // As before: what was not written by now is not (the broker resends what this worker did not ack).
    this.outbound.disconnected();
    if (this.firstConnect) {
      this.firstConnect.reject(new TransportClosedError('closed before connecting'));
      this.firstConnect = undefined;
    }
    const socket = this.connector.take();
    if (socket) {
      await new Promise<void>(resolve => {
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => socket.destroy(), 200).unref();
      });
    }
    this.outbound.failAll(
      new TransportClosedError('transport closed before the broker acknowledged this event'),
    );
    this.limiter.flush();
    this.machine.complete();
  }
}
