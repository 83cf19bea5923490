import type { Transport } from '../interfaces/transport.interface.js';
import type { IpcTransportOptions } from './ipc/ipc.options.js';
import type { PgTransportOptions } from './pg/pg-transport.options.js';
import type { RedisTransportOptions } from './redis/redis.options.js';
import { LocalTransport } from './local/local.transport.js';

/** The built-in transports by name. @publicApi */
export type TransportName = 'local' | 'ipc' | 'pg' | 'redis';

/**
 * Which transport to use and its options. Each built-in transport beyond
 * `local` is loaded with a dynamic import only when chosen, so an app that
 * uses one transport never loads the driver of another (`pg`, `ioredis`).
 * @publicApi
 */
export interface TransportSelection {
  /** A built-in transport by name, or any object implementing {@link Transport}. @default 'local' */
  transport?: TransportName | Transport;
  // Each built-in transport adds its options field here, e.g. `ipc?: IpcTransportOptions`.
  /** Options of the `ipc` transport (one host, a broker on a unix socket). */
  ipc?: IpcTransportOptions;
  /** Options of the `pg` transport (loaded from `nest-herald/pg`'s module only when chosen). */
  pg?: PgTransportOptions;
  /** Options of the `redis` transport (loaded with ioredis only when chosen). */
  redis?: RedisTransportOptions;
}

/** Builds the transport a selection names. */
export async function createTransport(selection: TransportSelection): Promise<Transport> {
  const transport = selection.transport ?? 'local';
  if (typeof transport === 'object') return transport;
  switch (transport) {
    case 'local':
      return new LocalTransport();
    case 'ipc': {
      const { IpcTransport } = await import('./ipc/ipc.transport.js');
      return new IpcTransport(selection.ipc ?? {});
    }
    case 'redis': {
      const { RedisTransport } = await import('./redis/redis.transport.js');
      return new RedisTransport(selection.redis ?? {});
    }
    case 'pg': {
      const { PgTransport } = await import('./pg/pg.transport.js');
      return new PgTransport(selection.pg ?? {});
    }
    // Each built-in transport adds its case here, loading its module lazily:
    // case 'pg': { const { PgTransport } = await import('./pg/pg.transport.js'); return new PgTransport(selection.pg ?? {}); }
    default:
      throw new TypeError(
        `unknown transport '${String(transport)}': use 'local', 'ipc', 'pg', 'redis' or a Transport object`,
      );
  }
}
