import cluster from 'node:cluster';
import { InvalidOptionsError } from '../common/errors.js';
import type { Transport } from '../interfaces/transport.interface.js';
import type { IpcTransportOptions } from './ipc/ipc.options.js';
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
 * host's broker a redis transport in broadcast mode read through the
 * host's group `<group>:tier:<host>` and consumer `tier:<host>` (durable:
 * a broker elected after a failover resumes from the group's cursor).
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
  const { RedisTransport } = await import('./redis/redis.transport.js');
  const network = resolved.network as RedisTransportOptions;
  const group = network.group ?? 'herald';
  const makeUplink = (): Transport =>
    new RedisTransport({
      ...network,
      mode: 'broadcast',
      group,
      instance: `tier:${resolved.host}`,
      consumer: `tier:${resolved.host}`,
      // A failover's leftovers are claimed soon (heartbeats keep live ones from it).
      minIdleMs: network.minIdleMs ?? 5000,
      claimIntervalMs: network.claimIntervalMs ?? 1000,
    });
  // Checks the redis options now, at construction, as every transport does.
  makeUplink();
  return new TieredTransport({
    host,
    uplink: makeUplink,
    hostName: resolved.host,
    relayMemory: resolved.relayMemory ?? host.options.maxQueueLength,
  });
}
