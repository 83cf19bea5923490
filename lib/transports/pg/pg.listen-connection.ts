import pg from 'pg';
import type { Client, ClientConfig, Notification, Pool } from 'pg';
import { describeError } from '../../common/describe-error.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { WarningLimiter } from '../../common/warning-limiter.js';

/** What the LISTEN connection asks of its hub. */
export interface PgListenHooks {
  /** The topics consumers want now (LISTENed on connect and by `sync()`). */
  wantedTopics(): readonly string[];
  /** True once the hub is stopping: no more connects. */
  isStopping(): boolean;
  onNotification(message: Notification): void;
  /** Up, every wanted topic LISTENed; `first` for the first connect ever. */
  onConnected(first: boolean): void;
  /** Lost (not by stop()); a reconnect is scheduled. */
  onLost(reason: string): void;
  /** A LISTEN/UNLISTEN command ran: subscriptions waiting for it may settle. */
  onListened(): void;
}

/** The LISTEN connection's counters (part of `PgHubStats`). */
export interface PgListenCounters {
  listenCount: number;
  listenFailCount: number;
  unlistenCount: number;
  unlistenFailCount: number;
  connectCount: number;
  connectFailCount: number;
  disconnectCount: number;
  q1Max: number;
}

/** Its settings, from the hub's options. */
export interface PgListenSettings {
  readonly pool: Pool;
  readonly name: string;
  readonly applicationName: string;
  readonly reconnectMs: number;
  readonly heartbeatMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly logger: HeraldLogger;
}

/** TCP keepalive on the LISTEN socket: first probe after this idle time. */
const KEEPALIVE_DELAY_MS = 10_000;

/** The part of node-postgres' Client internals used to reach the socket. */
interface PgClientInternals {
  connection?: { stream?: { destroy?(): unknown } };
}

function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** Closes a client at once (its socket destroyed: a black-holed peer never answers a goodbye). */
function closeClient(client: Client): void {
  (client as unknown as PgClientInternals).connection?.stream?.destroy?.();
  client.end().catch(() => undefined);
}

/**
 * The hub's one LISTEN connection and its LISTENs (pg-hub's Q1): a client
 * of its own, never one of the pool's (so notifies and claims can never
 * take the connection LISTEN needs, whatever the pool's size), reconnected
 * every `reconnectMs` with jitter, every wanted topic re-LISTENed, and
 * watched by a heartbeat. `sync()` and the connect share this connection
 * one query at a time, so they live together.
 */
export class PgListenConnection {
  readonly counters: PgListenCounters = {
    listenCount: 0,
    listenFailCount: 0,
    unlistenCount: 0,
    unlistenFailCount: 0,
    connectCount: 0,
    connectFailCount: 0,
    disconnectCount: 0,
    q1Max: 0,
  };
  /** Topics LISTENed on the current connection. */
  readonly listening = new Set<string>();
  private client?: Client;
  private connection = 0;
  private everConnected = false;
  private connectTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatTimeout?: NodeJS.Timeout;
  private heartbeatPending = false;
  /** The heartbeat query in flight: LISTENs wait for it (one query at a time). */
  private heartbeat?: Promise<unknown>;
  private syncing = false;
  /** When the connection was lost (for the recovery line). */
  private lostAt?: number;
  /** Failed connect attempts repeat every reconnectMs while the server is away: one line per interval. */
  private readonly warnings: WarningLimiter;
  /** When the server last answered on this connection (connect, LISTEN, heartbeat). */
  private answeredAt = Date.now();

  constructor(
    private readonly settings: PgListenSettings,
    private readonly hooks: PgListenHooks,
  ) {
    this.warnings = new WarningLimiter(settings.logger);
  }

  /** The client while connected. */
  get current(): Client | undefined {
    return this.client;
  }

  /** Backend pid of the connection while connected. */
  get processId(): number | undefined {
    return (this.client as unknown as { processID?: number } | undefined)?.processID;
  }

  /**
   * Milliseconds since the server last answered the LISTEN connection (its
   * connect, a LISTEN, a heartbeat): below `heartbeatMs` plus a round trip
   * while all is well; it grows while the connection is down or silent.
   */
  get heartbeatAgeMs(): number {
    return Math.max(0, Date.now() - this.answeredAt);
  }

  /** The reconnect wait with +-25% jitter. */
  jitter(): number {
    return Math.round(this.settings.reconnectMs * (0.75 + Math.random() * 0.5));
  }

  /** Starts connecting (retrying until `close()`). */
  open(): void {
    void this.connectOnce();
  }

  /** Closes for good: no reconnect, the client destroyed (a pooled session would keep our LISTENs). */
  close(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.stopHeartbeat();
    this.connection++;
    const client = this.client;
    this.client = undefined;
    this.listening.clear();
    if (client) closeClient(client);
  }

  /**
   * The LISTEN connection's settings: the pool's own, on a client of its
   * own, with TCP keepalive on even when your pool was made without it.
   */
  private config(): ClientConfig {
    const options = (this.settings.pool as Pool & { options?: ClientConfig }).options ?? {};
    return {
      ...options,
      application_name: this.settings.applicationName + '/listen',
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    };
  }

  private scheduleConnect(delay: number): void {
    if (this.hooks.isStopping() || this.connectTimer) return;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      void this.connectOnce();
    }, delay);
  }

  /** One attempt to bring the connection up; schedules the next on failure. */
  private async connectOnce(): Promise<void> {
    if (this.hooks.isStopping()) return;
    const { name, applicationName, logger } = this.settings;
    const connection = ++this.connection;
    const client = new pg.Client(this.config());
    client.on('notification', (message: Notification) => {
      if (connection === this.connection) this.hooks.onNotification(message);
    });
    client.on('error', (error: Error) => this.lose(connection, client, describeError(error)));
    client.on('end', () => this.lose(connection, client, 'connection ended'));
    const topics = [...this.hooks.wantedTopics()];
    // Topics are validated identifiers, quoted: LISTEN takes no parameters.
    const statements = ['UNLISTEN *', ...topics.map(topic => `LISTEN ${quoteIdent(topic)}`)];
    try {
      await client.connect();
      // Also set here: a connectionString's own application_name wins over the config's.
      await client.query("SELECT pg_catalog.set_config('application_name', $1, false)", [
        applicationName + '/listen',
      ]);
      await client.query(statements.join('; '));
    } catch (error) {
      this.counters.connectFailCount++;
      this.counters.listenFailCount += topics.length;
      this.warnings.warn(
        'listen-connect-failed',
        logLine(
          'pg',
          'listen-connect-failed',
          `LISTEN connection attempt failed, retrying every ${this.settings.reconnectMs} ms: ${describeError(error)}`,
          { hub: name },
        ),
      );
      if (connection === this.connection) this.connection++;
      closeClient(client);
      this.scheduleConnect(this.jitter());
      return;
    }
    if (this.hooks.isStopping() || connection !== this.connection) {
      closeClient(client);
      // Lost between the LISTEN and here: try again.
      if (!this.hooks.isStopping()) this.scheduleConnect(0);
      return;
    }
    this.client = client;
    this.answeredAt = Date.now();
    this.listening.clear();
    for (const topic of topics) this.listening.add(topic);
    this.counters.listenCount += topics.length;
    this.counters.connectCount++;
    const first = !this.everConnected;
    this.everConnected = true;
    if (this.lostAt !== undefined) {
      const downtimeMs = Date.now() - this.lostAt;
      this.warnings.flush();
      logger.log(
        logLine(
          'pg',
          'listen-recovered',
          `LISTEN connection back after ${downtimeMs} ms; notifications sent while it was down ` +
            'may be lost (durable mode reads them from its outbox)',
          { hub: name, downtimeMs },
        ),
      );
      this.lostAt = undefined;
    }
    this.startHeartbeat(connection, client);
    this.hooks.onConnected(first);
    void this.sync();
  }

  /** The connection failed: announce it and reconnect. */
  private lose(connection: number, client: Client, reason: string): void {
    if (connection !== this.connection) return;
    this.connection++;
    this.stopHeartbeat();
    closeClient(client);
    // Still connecting: connectOnce sees the changed connection number and retries.
    if (this.client !== client) return;
    this.client = undefined;
    this.listening.clear();
    if (this.hooks.isStopping()) return;
    this.counters.disconnectCount++;
    this.lostAt = Date.now();
    this.settings.logger.warn(
      logLine(
        'pg',
        'listen-lost',
        `LISTEN connection lost (${reason}); reconnecting, notifications sent until it is back ` +
          'are lost (durable mode reads them from its outbox)',
        { hub: this.settings.name },
      ),
    );
    this.hooks.onLost(reason);
    // The server may just have dropped this session (a restart, a terminate):
    // try again at once, then every reconnectMs.
    this.scheduleConnect(0);
  }

  /**
   * Every `heartbeatMs` a `SELECT 1`, which must be answered within
   * `heartbeatTimeoutMs`: a peer gone silent (no RST: a black hole, a frozen
   * VM) is noticed within heartbeatMs + heartbeatTimeoutMs. TCP keepalive
   * alone would take minutes.
   */
  private startHeartbeat(connection: number, client: Client): void {
    const { heartbeatMs, heartbeatTimeoutMs } = this.settings;
    this.stopHeartbeat();
    let syncTicks = 0;
    this.heartbeatTimer = setInterval(() => {
      if (this.heartbeatPending) return;
      // One query at a time on this connection: a LISTEN running is a
      // heartbeat of its own, unless it outlives a whole interval.
      if (this.syncing) {
        if (++syncTicks > 1)
          this.lose(connection, client, `LISTEN unanswered for ${heartbeatMs} ms`);
        return;
      }
      syncTicks = 0;
      this.heartbeatPending = true;
      this.heartbeatTimeout = setTimeout(
        () =>
          this.lose(
            connection,
            client,
            `no answer to the heartbeat within ${heartbeatTimeoutMs} ms`,
          ),
        heartbeatTimeoutMs,
      );
      this.heartbeatTimeout.unref?.();
      this.heartbeat = client.query('SELECT 1').then(
        () => {
          this.answeredAt = Date.now();
          if (this.heartbeatTimeout) clearTimeout(this.heartbeatTimeout);
          this.heartbeatTimeout = undefined;
          this.heartbeatPending = false;
        },
        error => this.lose(connection, client, `heartbeat failed: ${describeError(error)}`),
      );
    }, heartbeatMs);
    this.heartbeatTimer.unref?.();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.heartbeatTimeout) clearTimeout(this.heartbeatTimeout);
    this.heartbeatTimer = this.heartbeatTimeout = undefined;
    this.heartbeatPending = false;
  }

  /**
   * Brings the LISTENs of the connection in line with the wanted topics,
   * one command at a time.
   */
  async sync(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      for (;;) {
        const client = this.client;
        if (!client) return;
        const connection = this.connection;
        const wanted = new Set(this.hooks.wantedTopics());
        const toListen = [...wanted].filter(topic => !this.listening.has(topic));
        const toUnlisten = [...this.listening].filter(topic => !wanted.has(topic));
        const pending = toListen.length + toUnlisten.length;
        if (pending > this.counters.q1Max) this.counters.q1Max = pending;
        if (pending === 0) return;
        const statements = [
          ...toUnlisten.map(topic => `UNLISTEN ${quoteIdent(topic)}`),
          ...toListen.map(topic => `LISTEN ${quoteIdent(topic)}`),
        ];
        try {
          if (this.heartbeatPending) await this.heartbeat;
          await client.query(statements.join('; '));
          this.answeredAt = Date.now();
        } catch (error) {
          this.counters.listenFailCount += toListen.length;
          this.counters.unlistenFailCount += toUnlisten.length;
          this.settings.logger.warn(
            logLine(
              'pg',
              'listen-command-failed',
              `LISTEN/UNLISTEN failed: ${describeError(error)}`,
              {
                hub: this.settings.name,
                listen: toListen.join(',') || undefined,
                unlisten: toUnlisten.join(',') || undefined,
              },
            ),
          );
          // A failed LISTEN leaves the session's channels unknown: start afresh.
          this.lose(connection, client, `LISTEN failed: ${describeError(error)}`);
          return;
        }
        if (connection !== this.connection) return;
        for (const topic of toUnlisten) this.listening.delete(topic);
        for (const topic of toListen) this.listening.add(topic);
        this.counters.listenCount += toListen.length;
        this.counters.unlistenCount += toUnlisten.length;
        this.hooks.onListened();
      }
    } finally {
      this.syncing = false;
    }
  }
}
