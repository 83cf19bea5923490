import { BaseRpcContext } from '@nestjs/microservices';
import type { PacketMetadata } from '@nestjs/microservices';

type RedisStreamsContextArgs = [
  stream: string,
  id: string,
  deliveries: number,
  group: string | undefined,
  consumer: string | undefined,
  metadata: PacketMetadata | undefined,
];

/**
 * What a `RedisStreamsServer` handler can learn about its entry
 * (`@Ctx() context: RedisStreamsContext`). @publicApi
 */
export class RedisStreamsContext extends BaseRpcContext<RedisStreamsContextArgs> {
  /** The stream the entry was read from. */
  getStream(): string {
    return this.args[0];
  }

  /** The entry id (`<ms>-<seq>`). */
  getMessageId(): string {
    return this.args[1];
  }

  /** 1 on first delivery; Redis's delivery count on redeliveries. */
  getDeliveryCount(): number {
    return this.args[2];
  }

  /** The consumer group. */
  getGroup(): string | undefined {
    return this.args[3];
  }

  /** This instance's consumer name in the group. */
  getConsumer(): string | undefined {
    return this.args[4];
  }

  /** The metadata the client attached to the packet, if any. */
  getMetadata(): PacketMetadata | undefined {
    return this.args[5];
  }
}
