import { describeError } from '../../common/describe-error.js';
import { Fifo } from '../../common/fifo.js';
import { jsonCodec } from '../../common/json.codec.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import type { WarningLimiter } from '../../common/warning-limiter.js';
import type { EventHandler, HeraldEvent } from '../../interfaces/envelope.interface.js';
import { decodeEventBody, describeEventBody } from './ipc.codec.js';
import { BodyReader } from './ipc.frame.js';

interface Registration {
  readonly handler: EventHandler;
  readonly source: string;
  readonly events: readonly string[];
}

/** Counters of the privileged agent (in {@link IpcBroker.stats} as `privileged*`). */
export interface PrivilegedAgentStats {
  readonly received: number;
  readonly handled: number;
  readonly handlerErrors: number;
  /** Events dropped from its full retained queue (each cause logged, repeats counted). */
  readonly dropped: number;
  readonly queued: number;
}

/**
 * The privileged agent of lua-resty-events (`enable_privileged_agent`,
 * worker id -1) for Node: the process hosting the broker (the node:cluster
 * primary) receives every broadcast, outside the worker ids, through
 * handlers registered on the broker. It has a retained queue of its own
 * (bounded; the oldest dropped, counted and logged when full): events wait
 * there until a handler is registered, and are handled one at a time in the
 * broker's order (an async handler is awaited before the next event).
 * Unique events go to one worker, never to the agent, as in the original.
 */
export class PrivilegedAgent {
  private readonly registrations: Registration[] = [];
  private readonly queue = new Fifo<Buffer>();
  private readonly reader = new BodyReader();
  private running = false;
  private readonly counters = { received: 0, handled: 0, handlerErrors: 0, dropped: 0 };

  constructor(
    private readonly maxQueueLength: number,
    private readonly logger: HeraldLogger,
    private readonly limiter: WarningLimiter,
  ) {}

  /** Adds a handler of `source` (`'*'` for any) and `events` (none or `'*'` for any); returns its remover. */
  register(handler: EventHandler, source = '*', events: readonly string[] = []): () => void {
    const registration = { handler, source, events };
    this.registrations.push(registration);
    this.schedule();
    return () => {
      const index = this.registrations.indexOf(registration);
      if (index >= 0) this.registrations.splice(index, 1);
    };
  }

  /** A broadcast placed by the broker: the body is shared, never copied. */
  push(body: Buffer): void {
    this.counters.received++;
    if (this.queue.length >= this.maxQueueLength) {
      const oldest = this.queue.shift()!;
      this.counters.dropped++;
      this.limiter.warn(
        'privileged-full',
        logLine(
          'ipc',
          'privileged-queue-full',
          `the privileged agent's queue is full (${this.maxQueueLength}); dropped its oldest event ${describeEventBody(oldest)}`,
          { dropped: this.counters.dropped },
        ),
      );
    }
    this.queue.push(body);
    this.schedule();
  }

  stats(): PrivilegedAgentStats {
    return { ...this.counters, queued: this.queue.length };
  }

  private schedule(): void {
    if (this.running || this.registrations.length === 0 || this.queue.length === 0) return;
    this.running = true;
    setImmediate(() => void this.run());
  }

  private async run(): Promise<void> {
    while (this.registrations.length > 0) {
      const body = this.queue.shift();
      if (!body) break;
      await this.handle(body);
    }
    this.running = false;
    this.schedule();
  }

  private async handle(body: Buffer): Promise<void> {
    let event: HeraldEvent;
    try {
      const envelope = decodeEventBody(this.reader.reset(body, 0, body.length));
      event = {
        id: envelope.id,
        source: envelope.source,
        event: envelope.event,
        data: jsonCodec.decode(envelope.payload),
        key: envelope.key,
        origin: envelope.origin,
        occurredAt: envelope.occurredAt,
        headers: envelope.headers ?? {},
        local: false,
        attempt: 1,
      };
    } catch (error) {
      this.counters.handlerErrors++;
      this.limiter.error(
        'privileged-decode',
        logLine(
          'ipc',
          'privileged-decode-failed',
          `the privileged agent cannot decode ${describeEventBody(body)}: ${describeError(error)}`,
        ),
      );
      return;
    }
    for (const r of [...this.registrations]) {
      if (r.source !== '*' && r.source !== event.source) continue;
      if (r.events.length > 0 && !r.events.includes('*') && !r.events.includes(event.event))
        continue;
      try {
        await r.handler(event.data, event);
      } catch (error) {
        this.counters.handlerErrors++;
        this.limiter.error(
          `privileged-handler-${event.source}/${event.event}`,
          logLine(
            'ipc',
            'privileged-handler-failed',
            `a privileged handler of ${event.source}/${event.event} (id ${event.id}) failed: ${describeError(error)}`,
            { source: event.source, event: event.event, id: event.id },
          ),
        );
      }
    }
    this.counters.handled++;
  }
}
