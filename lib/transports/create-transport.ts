import type { Transport } from '../interfaces/transport.interface.js';
import type { IpcTransportOptions } from './ipc/ipc.options.js';
import type { PgTransportOptions } from './pg/pg-transport.options.js';
import type { RedisTransportOptions } from './redis/redis.options.js';
import type { TieredUplinkOptions } from './tiered/tiered.options.js';
import { autoloadTelemetry } from '../otel/otel.loader.js';
import { LocalTransport } from './local/local.transport.js';

/** The built-in transports by name. @publicApi */
export type TransportName = 'local' | 'ipc' | 'pg' | 'redis';

/**
 * Which transport to use and its options. Each built-in transport beyond
 * `local` is loaded with a dynamic import only when chosen, so an app that
 * uses one transport never loads the driver of another (`pg`, `ioredis`).
 *
 * The root entry's typings name no optional peer: `nest-herald/pg` adds the
 * `pg` field and `nest-herald/redis` the `redis` field by declaration merging
 * (`declare module 'nest-herald'`), so `transport: 'pg'` with `pg: {...}`
 * type-checks once the app imports `nest-herald/pg`, and an app without pg
 * or ioredis type-checks without them.
 * @publicApi
 */
export interface TransportSelection {
  /** A built-in transport by name, or any object implementing {@link Transport}. @default 'local' */
  transport?: TransportName | Transport;
  /**
   * Options of the `ipc` transport (one host, a broker on a unix socket).
   * With `uplink`, the tiered layout: the host's broker shares one network
   * subscription among the host's workers (`createTieredTransport`).
   */
  ipc?: IpcTransportOptions & { uplink?: TieredUplinkOptions };
}

/**
 * The selection with the fields the subpaths add. Read here through this
 * view, not through the augmentation, so the root typings (this file's
 * .d.ts) never import pg or ioredis types: type-only imports used in
 * function bodies are not emitted.
 */
type FullSelection = TransportSelection & {
  pg?: PgTransportOptions;
  redis?: RedisTransportOptions;
};

/**
 * Builds the transport a selection names. It also loads the OpenTelemetry
 * instrumentation when `@opentelemetry/api` is installed (a dynamic import,
 * during module init), so the bus built next has its hooks.
 */
export async function createTransport(options: TransportSelection): Promise<Transport> {
  await autoloadTelemetry();
  const selection: FullSelection = options;
  const transport = selection.transport ?? 'local';
  if (typeof transport === 'object') return transport;
  switch (transport) {
    case 'local':
      return new LocalTransport();
    case 'ipc': {
      const { uplink, ...ipc } = selection.ipc ?? {};
      if (uplink !== undefined) {
        const { createTieredTransport } = await import('./create-tiered.js');
        return createTieredTransport(ipc, uplink);
      }
      const { IpcTransport } = await import('./ipc/ipc.transport.js');
      return new IpcTransport(ipc);
    }
    case 'redis': {
      const { RedisTransport } = await import('./redis/redis.transport.js');
      return new RedisTransport(selection.redis ?? {});
    }
    case 'pg': {
      const { PgTransport } = await import('./pg/pg.transport.js');
      return new PgTransport(selection.pg ?? {});
    }
    default:
      throw new TypeError(
        `unknown transport '${String(transport)}': use 'local', 'ipc', 'pg', 'redis' or a Transport object`,
      );
  }
}
