import { hostname } from 'node:os';
import { InvalidOptionsError } from '../../../../lib/common/errors.js';
import { createTransport } from '../../../../lib/transports/create-transport.js';
import { createTieredTransport } from '../../../../lib/transports/create-tiered.js';
import { TieredTransport } from '../../../../lib/transports/tiered/tiered.transport.js';
import { resolveTieredUplinkOptions } from '../../../../lib/transports/tiered/tiered.options.js';

describe('tiered uplink options', () => {
  it('defaults the host to this machine and leaves the redis options to the redis transport', () => {
    const resolved = resolveTieredUplinkOptions({ transport: 'redis', redis: { stream: 's' } });
    expect(resolved.transport).toBe('redis');
    expect(resolved.host).toBe(
      hostname()
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .slice(0, 100),
    );
    expect(resolved.network).toEqual({ stream: 's' });
    expect(resolved.relayMemory).toBeUndefined();
  });

  it.each([
    [undefined, /ipc.uplink: options must be an object/],
    [
      {},
      /ipc.uplink: transport must be 'redis' or 'pg' \(the network transport\) \(got undefined\)/,
    ],
    [{ transport: 'kafka' }, /transport must be one of 'redis', 'pg' \(got "kafka", a string\)/],
    [{ transport: 'pg', redis: {} }, /redis must be left out with transport 'pg'/],
    [
      { transport: 'pg', pg: { durable: false } },
      /pg.durable must be true or an object.*\(got false/,
    ],
    [
      { transport: 'pg', pg: { durable: { consumer: 'c' } } },
      /pg.durable.consumer must be left out \(the tier names the consumer after the host\)/,
    ],
    [{ transport: 'pg', pg: { topics: ['t'] } }, /pg.topics must be left out/],
    [{ transport: 'redis', pg: {} }, /pg must be left out with transport 'redis'/],
    [{ transport: 'redis', host: '' }, /host must be a non-empty string \(got ""/],
    [{ transport: 'redis', host: 'a b' }, /host must be letters, digits.*\(got "a b"/],
    [{ transport: 'redis', host: 'a:b' }, /host must be letters, digits.*\(got "a:b"/],
    [{ transport: 'redis', relayMemory: 0 }, /relayMemory must be an integer >= 1 \(got 0/],
    [{ transport: 'redis', relayMemory: 1.5 }, /relayMemory must be an integer >= 1 \(got 1.5/],
    [{ transport: 'redis', redis: 'x' }, /redis must be an object \(got "x"/],
    [{ transport: 'redis', redis: { mode: 'work-queue' } }, /redis.mode must be left out/],
    [{ transport: 'redis', redis: { instance: 'i' } }, /redis.instance must be left out/],
    [{ transport: 'redis', redis: { consumer: 'c' } }, /redis.consumer must be left out/],
    [{ transport: 'redis', redis: { intake: false } }, /redis.intake must be left out/],
    [{ transport: 'redis', redis: { layout: 'mainflux' } }, /redis.layout must be left out/],
    [{ transport: 'redis', hosts: 2 }, /unknown option 'hosts'/],
  ])('refuses %j', (input, message) => {
    expect(() => resolveTieredUplinkOptions(input)).toThrow(InvalidOptionsError);
    expect(() => resolveTieredUplinkOptions(input)).toThrow(message);
  });

  it('createTieredTransport checks the ipc, uplink and redis options at construction', async () => {
    const dir = `/tmp/herald-tier-unit-${process.pid}`;
    const transport = await createTieredTransport(
      { socketPath: `${dir}/h.sock`, workerId: 0, workerCount: 2, failover: true },
      { transport: 'redis', host: 'h1', redis: { stream: 's' } },
    );
    expect(transport).toBeInstanceOf(TieredTransport);
    expect(transport.features).toMatchObject({ reach: 'network', uniqueScope: 'network' });
    await expect(
      createTieredTransport(
        { socketPath: `${dir}/h.sock` },
        { transport: 'redis', redis: { readCount: 0 } },
      ),
    ).rejects.toThrow(/RedisTransport: readCount must be an integer >= 1 \(got 0/);
    await expect(createTieredTransport({ workerId: -1 }, { transport: 'redis' })).rejects.toThrow(
      InvalidOptionsError,
    );
    const pg = await createTieredTransport(
      { socketPath: `${dir}/p.sock` },
      { transport: 'pg', host: 'h1', pg: { connectionString: 'postgres://x@127.0.0.1/x' } },
    );
    expect(pg.name).toBe('tiered');
    await expect(
      createTieredTransport(
        { socketPath: `${dir}/p.sock` },
        { transport: 'pg', pg: { durable: { readBatch: -1 } } },
      ),
    ).rejects.toThrow(/readBatch/);
  });

  it("transport: 'ipc' with ipc.uplink builds the tiered transport; without it a plain IpcTransport", async () => {
    const socketPath = `/tmp/herald-tier-unit-${process.pid}/h.sock`;
    const tiered = await createTransport({
      transport: 'ipc',
      ipc: { socketPath, uplink: { transport: 'redis', host: 'h1' } },
    });
    expect(tiered.name).toBe('tiered');
    const plain = await createTransport({ transport: 'ipc', ipc: { socketPath } });
    expect(plain.name).toBe('ipc');
  });
});
