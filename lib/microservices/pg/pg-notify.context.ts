import { BaseRpcContext } from '@nestjs/microservices';
import type { PacketMetadata } from '@nestjs/microservices';
import type { PgKey } from '../../transports/pg/pg.codec.js';

type PgNotifyContextArgs = [
  channel: string,
  key: PgKey,
  processId: number | undefined,
  metadata: PacketMetadata | undefined,
];

/**
 * What a `PgNotifyServer` handler can learn about its message
 * (`@Ctx() context: PgNotifyContext`). @publicApi
 */
export class PgNotifyContext extends BaseRpcContext<PgNotifyContextArgs> {
  /** The channel (LISTEN name) the notification came on. */
  getChannel(): string {
    return this.args[0];
  }

  /** The pg-hub key (an ordered list of int64; empty when the sender gave none). */
  getKey(): PgKey {
    return this.args[1];
  }

  /** The backend pid of the session that sent the notification. */
  getProcessId(): number | undefined {
    return this.args[2];
  }

  /** The metadata the client attached to the packet (`setOnDispatchHook`, `HeraldRecord`), if any. */
  getMetadata(): PacketMetadata | undefined {
    return this.args[3];
  }
}
