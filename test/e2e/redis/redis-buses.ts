import type { Redis } from 'ioredis';
import {
  EventBus,
  silentLogger,
  type Codec,
  type EventSchemas,
  type HeraldLogger,
} from '../../../lib/index.js';
import { RedisTransport, type RedisTransportOptions } from '../../../lib/redis/index.js';
import { REDIS_URL, uniqueName } from '../../helpers/services.js';

/**
 * The buses a redis e2e spec starts (RedisTransport on the shared Redis, a
 * short block and retry delay so tests do not wait on them) and the stream
 * keys it names, so its afterEach closes and deletes them all.
 */
export class RedisBuses {
  readonly buses: EventBus[] = [];
  readonly keys: string[] = [];

  constructor(private readonly admin: Redis) {}

  /** A connected, started bus over a RedisTransport with `options`. */
  async instance(
    options: RedisTransportOptions,
    bus: { logger?: HeraldLogger; codec?: Codec; schemas?: EventSchemas } = {},
  ): Promise<EventBus> {
    const transport = new RedisTransport({
      url: REDIS_URL,
      blockMs: 100,
      nackRetryDelayMs: 20,
      ...options,
    });
    const created = new EventBus({ transport, logger: silentLogger, ...bus });
    this.buses.push(created);
    await created.connect();
    created.start();
    return created;
  }

  /** A unique stream name; it and its dead-letter stream are deleted by {@link deleteKeys}. */
  stream(prefix: string): string {
    const name = uniqueName(prefix);
    this.keys.push(name, `${name}:dead`);
    return name;
  }

  async closeBuses(): Promise<void> {
    await Promise.all(this.buses.splice(0).map(bus => bus.close({ timeoutMs: 2000 })));
  }

  async deleteKeys(): Promise<void> {
    if (this.keys.length) await this.admin.del(...this.keys.splice(0));
  }
}
