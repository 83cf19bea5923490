import cluster from 'node:cluster';
import { InvalidOptionsError } from '../common/errors.js';
import type { Transport } from '../interfaces/transport.interface.js';
import type { IpcTransportOptions } from './ipc/ipc.options.js';
import type { PgTransportOptions } from './pg/pg-transport.options.js';
import type { RedisTransportOptions } from './redis/redis.options.js';
import { IpcTransport } from './ipc/ipc.transport.js';
import { TieredTransport } from './tiered/tiered.transport.js';
import { resolveTieredUplinkOptions, type TieredUplinkOptions } from './tiered/tiered.options.js';

/*
 * The one place the host transport (ipc) and the network transport (redis)
 * are put together into a TieredTransport: the transports' own folders never
 * import each other (scripts/check-layers.mjs).
 */

/**
 * Builds the tiered layout of `transport: 'ipc', ipc: { ..., uplink }`: an
 * {@link IpcTransport} in every process, and in the process that hosts the
 * host's broker the uplink: a redis transport in broadcast mode read
 * through the host's group `<group>:tier:<host>` and consumer
 * `tier:<host>`, or a pg transport in durable mode under the consumer
 * `tier:<host>` (either way a broker elected after a failover resumes from
 * the host's cursor). Loads the uplink's driver only here.
 * Refuses (with `InvalidOptionsError`) a node:cluster worker that neither
 * hosts nor elects the broker (the primary hosts it there and runs no bus).
 * @publicApi
 */
export async function createTieredTransport(
  ipc: IpcTransportOptions,
  uplink: TieredUplinkOptions,
): Promise<TieredTransport> {
  const resolved = resolveTieredUplinkOptions(uplink);
  const host = new IpcTransport(ipc);
  if (cluster.isWorker && !host.options.failover && !host.options.hostBroker)
    throw new InvalidOptionsError(
      'ipc.uplink: the uplink runs in the process hosting the broker; under node:cluster the primary hosts it and a tiered uplink there is not implemented (use failover or hostBroker)',
    );
  const makeUplink =
    resolved.transport === 'pg'
      ? await pgUplink(resolved.network as PgTransportOptions, resolved.host)
      : await redisUplink(resolved.network as RedisTransportOptions, resolved.host);
  // Checks the network transport's options now, at construction, as every transport does.
  makeUplink();
  return new TieredTransport({
    host,
    uplink: makeUplink,
    hostName: resolved.host,
    relayMemory: resolved.relayMemory ?? host.options.maxQueueLength,
  });
}

/** Redis: broadcast mode, the host's durable group `<group>:tier:<host>` and consumer `tier:<host>`. */
async function redisUplink(network: RedisTransportOptions, host: string): Promise<() => Transport> {
  const { RedisTransport } = await import('./redis/redis.transport.js');
  return () =>
    new RedisTransport({
      ...network,
      mode: 'broadcast',
      group: network.group ?? 'herald',
      instance: `tier:${host}`,
      consumer: `tier:${host}`,
      // A failover's leftovers are claimed soon (heartbeats keep live ones from it).
      minIdleMs: network.minIdleMs ?? 5000,
      claimIntervalMs: network.claimIntervalMs ?? 1000,
    });
}

/** PostgreSQL: durable mode, the outbox read from the host's cursor, consumer `tier:<host>`. */
async function pgUplink(network: PgTransportOptions, host: string): Promise<() => Transport> {
  const { PgTransport } = await import('./pg/pg.transport.js');
  const durable = typeof network.durable === 'object' ? network.durable : {};
  return () => new PgTransport({ ...network, durable: { ...durable, consumer: `tier:${host}` } });
}
