import net from 'node:net';
import { describeError, isError } from '../../common/describe-error.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { RECONNECT_CAP_MS, RECONNECT_MAX_MS, RECONNECT_MIN_MS } from './ipc.constants.js';
import { IpcSocketError } from './ipc.errors.js';
import { checkSocketFile } from './ipc.socket.js';

/** Attempts after which an unreachable broker is said once (per streak of failures). */
const UNREACHABLE_WARN_ATTEMPTS = 50;

/** What the connector tells its client. */
export interface ConnectorHost {
  /** A socket connected: send HELLO on it. */
  opened(socket: net.Socket): void;
  /** Bytes from the current socket. */
  data(chunk: Buffer): void;
  /** The current socket closed (a reconnect is scheduled unless the client stopped). */
  closed(): void;
  /**
   * The socket failed the safety checks (e.g. the directory became
   * world-writable). @returns true to stop for good (nothing connected yet), false to retry.
   */
  unsafe(error: Error): boolean;
}

/**
 * The client's connector: one socket to the broker at a time, after the
 * socket file's safety checks; on failure or close, a new attempt after a
 * random back-off (10 ms up, doubling to a 1 s cap), or at once when told a
 * broker just started here ({@link retryNow}).
 */
export class Connector {
  socket?: net.Socket;
  private attempts = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly socketPath: string,
    private readonly host: ConnectorHost,
    private readonly logger: HeraldLogger,
  ) {}

  /** Starts connecting (the first attempt now). */
  start(): void {
    void this.attempt();
  }

  /** A handshake completed: the back-off starts over. */
  connected(): void {
    this.attempts = 0;
  }

  private async attempt(): Promise<void> {
    this.reconnectTimer = undefined;
    if (this.stopped) return;
    let ready: boolean;
    try {
      ready = await checkSocketFile(this.socketPath);
    } catch (error) {
      const err = isError(error) ? error : new IpcSocketError(describeError(error));
      this.logger.error(
        logLine(
          'ipc',
          'socket-unsafe',
          `the broker's socket fails the safety checks: ${describeError(err)}`,
          {
            socket: this.socketPath,
          },
        ),
      );
      if (this.host.unsafe(err)) {
        this.stopped = true;
        return;
      }
      this.retry(err.message);
      return;
    }
    if (this.stopped) return;
    if (!ready) {
      this.retry(`no broker socket at ${this.socketPath} yet`);
      return;
    }
    const socket = net.connect(this.socketPath);
    this.socket = socket;
    socket.setNoDelay?.(true);
    socket.on('connect', () => this.host.opened(socket));
    socket.on('data', chunk => {
      if (socket === this.socket) this.host.data(chunk);
    });
    socket.on('error', error => this.logger.debug?.(`ipc: socket error: ${error.message}`));
    socket.on('close', () => {
      if (socket !== this.socket) return;
      this.socket = undefined;
      this.host.closed();
      this.retry('connection closed');
    });
  }

  /** Tries to connect now instead of at the end of the back-off (a broker just started here). */
  retryNow(): void {
    if (this.stopped || this.socket || !this.reconnectTimer) return;
    clearTimeout(this.reconnectTimer);
    void this.attempt();
  }

  private retry(reason: string): void {
    if (this.stopped) return;
    this.attempts++;
    if (this.attempts === UNREACHABLE_WARN_ATTEMPTS) {
      this.logger.warn(
        logLine('ipc', 'broker-unreachable', `cannot reach the broker yet: ${reason}`, {
          attempts: this.attempts,
          socket: this.socketPath,
        }),
      );
    }
    const spread = Math.min(RECONNECT_CAP_MS, RECONNECT_MAX_MS * 2 ** Math.min(this.attempts, 10));
    const delay = RECONNECT_MIN_MS + Math.random() * (spread - RECONNECT_MIN_MS);
    this.reconnectTimer = setTimeout(() => void this.attempt(), delay);
  }

  /** Stops for good: no new attempt; the current socket is left to the caller (see {@link take}). */
  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  /** Detaches the current socket (its close no longer reported) and returns it. */
  take(): net.Socket | undefined {
    const socket = this.socket;
    this.socket = undefined;
    return socket;
  }
}
