import os from 'node:os';
import path from 'node:path';
import { InvalidOptionsError } from '../../../../lib/index.js';
import {
  defaultSocketPath,
  resolveIpcBrokerOptions,
  resolveIpcTransportOptions,
} from '../../../../lib/transports/ipc/ipc.options.js';
import { IpcBroker } from '../../../../lib/transports/ipc/ipc.broker.js';
import { forkWorkers, startBroker } from '../../../../lib/transports/ipc/ipc.cluster.js';
import { IpcTransport } from '../../../../lib/transports/ipc/ipc.transport.js';

const env = {};
const resolve = (
  options: Parameters<typeof resolveIpcTransportOptions>[0],
  e: Record<string, string> = env,
) => resolveIpcTransportOptions(options, e, false);

describe('ipc options', () => {
  it('applies the documented defaults', () => {
    const o = resolve({});
    expect(o).toMatchObject({
      workerId: 0,
      workerCount: 1,
      brokerId: 0,
      maxQueueLength: 10240,
      maxPayloadBytes: 65536,
      postTimeoutMs: 5000,
      hostBroker: true,
    });
    expect(o.socketPath).toBe(defaultSocketPath(env));
  });

  it('puts the default socket in a directory of our own under XDG_RUNTIME_DIR, else the temp dir', () => {
    const uid = process.getuid!();
    const xdg = defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/1234' });
    expect(path.dirname(xdg)).toBe(`/run/user/1234/nest-herald-${uid}`);
    expect(xdg).toMatch(/\/[0-9a-f]{12}\.sock$/);
    expect(path.dirname(defaultSocketPath({}))).toBe(path.join(os.tmpdir(), `nest-herald-${uid}`));
  });

  it('takes identity from HERALD_WORKER_ID / HERALD_WORKER_COUNT, then NODE_APP_INSTANCE (pm2)', () => {
    expect(resolve({}, { HERALD_WORKER_ID: '2', HERALD_WORKER_COUNT: '4' })).toMatchObject({
      workerId: 2,
      workerCount: 4,
      hostBroker: false,
    });
    expect(resolve({}, { NODE_APP_INSTANCE: '1', HERALD_WORKER_COUNT: '3' })).toMatchObject({
      workerId: 1,
    });
    expect(
      resolve({ brokerId: 1 }, { NODE_APP_INSTANCE: '1', HERALD_WORKER_COUNT: '3' }).hostBroker,
    ).toBe(true);
    expect(resolve({}, { HERALD_IPC_SOCKET: '/tmp/x/y.sock' }).socketPath).toBe('/tmp/x/y.sock');
  });

  it('never hosts the broker in a node:cluster worker (the primary does)', () => {
    expect(resolveIpcTransportOptions({}, {}, true).hostBroker).toBe(false);
    expect(resolveIpcTransportOptions({}, {}, true).failover).toBe(false);
  });

  it('elects the broker (failover) among independent processes unless hostBroker is set', () => {
    expect(resolveIpcTransportOptions({}, {}, false).failover).toBe(true);
    expect(resolveIpcTransportOptions({ hostBroker: true }, {}, false).failover).toBe(false);
    expect(resolveIpcTransportOptions({ hostBroker: false }, {}, false).failover).toBe(false);
    expect(
      resolveIpcTransportOptions({ hostBroker: false, failover: true }, {}, false).failover,
    ).toBe(true);
  });

  it.each([
    [{ socketPath: '/tmp/' + 'a'.repeat(110) }, /socketPath is 115 bytes, over the 107 bytes/],
    [{ socketPath: 'unix:' }, /must name a file after 'unix:'/],
    [{ socketPath: '' }, /socketPath must be a non-empty string/],
    [{ workerId: -1 }, /workerId must be an integer from 0 to 65534 \(got -1, a number\)/],
    [{ workerId: 1.5, workerCount: 4 }, /workerId must be an integer/],
    [
      { workerId: 4, workerCount: 4 },
      /workerId must be below workerCount \(got workerId 4, workerCount 4\)/,
    ],
    [{ workerId: 3 }, /workerCount is required with workerId 3/],
    [{ workerCount: 0 }, /workerCount must be an integer from 1 to 65535 \(got 0, a number\)/],
    [
      { brokerId: 2, workerCount: 2 },
      /brokerId must be an integer from 0 to 1 \(got 2, a number\)/,
    ],
    [{ maxQueueLength: 0 }, /maxQueueLength must be an integer >= 1 \(got 0, a number\)/],
    [
      { maxPayloadBytes: 16 * 1024 * 1024 },
      /maxPayloadBytes must be an integer from 1 to 16777215/,
    ],
    [{ maxPayloadBytes: 0 }, /maxPayloadBytes must be an integer from 1/],
    [{ postTimeoutMs: 0 }, /postTimeoutMs must be an integer from 1/],
    [{ hostBroker: 'yes' as never }, /hostBroker must be a boolean/],
    [{ failover: 1 as never }, /failover must be a boolean \(got 1, a number\)/],
  ])('refuses %j at start-up with a clear message', (options, message) => {
    expect(() => resolve(options)).toThrow(InvalidOptionsError);
    expect(() => resolve(options)).toThrow(message);
  });

  it('refuses a wrong-typed value and an unknown key of every public options object, naming it', () => {
    expect(() => resolve({ workerCount: '4' as never })).toThrow(
      'ipc: workerCount must be an integer from 1 to 65535 (got "4", a string)',
    );
    expect(() => resolve({ maxQueue: 5 } as never)).toThrow(InvalidOptionsError);
    expect(() => resolve({ maxQueue: 5 } as never)).toThrow("ipc: unknown option 'maxQueue'");
    expect(() => resolveIpcBrokerOptions({ handshakeTimeoutMs: '5' as never }, {})).toThrow(
      'ipc: handshakeTimeoutMs must be an integer from 1 to 2147483647 (got "5", a string)',
    );
    expect(() => resolveIpcBrokerOptions({ privileged: 'yes' as never }, {})).toThrow(
      'ipc broker: privileged must be a boolean (got "yes", a string)',
    );
    expect(() => resolveIpcBrokerOptions({ workerId: 1 } as never, {})).toThrow(
      "ipc broker: unknown option 'workerId'",
    );
    expect(() => new IpcTransport({ wildcard: true } as never)).toThrow(
      /unknown option 'wildcard'/,
    );
    expect(() => forkWorkers(1, { respawn: 'no' as never })).toThrow(InvalidOptionsError);
    expect(() => forkWorkers('2' as never)).toThrow(
      'forkWorkers: n must be an integer >= 1 (got "2", a string)',
    );
    expect(() => forkWorkers(1, { brokr: 1 } as never)).toThrow(
      "forkWorkers: unknown option 'brokr'",
    );
  });

  it('socketPath refusals name the value and its type too', () => {
    expect(() => resolve({ socketPath: 'unix:' })).toThrow(
      `ipc: socketPath must name a file after 'unix:' (got "unix:", a string)`,
    );
    expect(() => resolve({ socketPath: '/tmp/a\0b.sock' })).toThrow(
      /ipc: socketPath must not contain NUL \(got ".*", a string\)/,
    );
    expect(() => resolve({ socketPath: 42 as never })).toThrow(
      'ipc: socketPath must be a non-empty string (got 42, a number)',
    );
  });

  it('refuses a malformed worker id in the environment', () => {
    expect(() => resolve({}, { HERALD_WORKER_ID: 'two' })).toThrow(
      "environment variable HERALD_WORKER_ID must be an integer >= 0 (got 'two')",
    );
  });

  it('validates when the transport is constructed, before anything connects', () => {
    expect(() => new IpcTransport({ maxPayloadBytes: 2 ** 24 })).toThrow(InvalidOptionsError);
    expect(
      new IpcTransport({ maxPayloadBytes: 1000, socketPath: '/tmp/q/x.sock' }).features
        .maxPayloadBytes,
    ).toBe(1000);
  });

  it('validates broker options, including the unique cache', () => {
    expect(resolveIpcBrokerOptions({ workerCount: 4 }, {})).toMatchObject({
      workerCount: 4,
      unique: { ttlMs: 2000, cacheSize: 1024 },
    });
    expect(() => resolveIpcBrokerOptions({ unique: { ttlMs: 0 } }, {})).toThrow(
      'ipc broker: unique: ttlMs must be a finite number > 0 (got 0, a number)',
    );
  });

  it.each([
    [{ ttlMs: 0 }, 'ttlMs must be a finite number > 0 (got 0, a number)'],
    [{ ttlMs: -1 }, 'ttlMs must be a finite number > 0 (got -1, a number)'],
    [{ ttlMs: '1' }, 'ttlMs must be a finite number > 0 (got "1", a string)'],
    [{ cacheSize: 0 }, 'cacheSize must be an integer >= 1 (got 0, a number)'],
    [{ cacheSize: '1' }, 'cacheSize must be an integer >= 1 (got "1", a string)'],
    [{ ttl: 5 }, "unknown option 'ttl'"],
  ])(
    'refuses unique %j (as the original refuses unique_timeout "1" and -1) in the broker and startBroker',
    async (unique, message) => {
      expect(() => resolveIpcBrokerOptions({ unique: unique as never }, {})).toThrow(
        InvalidOptionsError,
      );
      expect(() => new IpcBroker({ unique: unique as never })).toThrow(message);
      await expect(startBroker({ unique: unique as never })).rejects.toThrow(message);
    },
  );

  it("accepts the original's unix:/path form of socketPath", () => {
    expect(resolve({ socketPath: 'unix:/tmp/herald-x/a.sock' }).socketPath).toBe(
      '/tmp/herald-x/a.sock',
    );
    expect(
      resolveIpcBrokerOptions({ socketPath: 'unix:/tmp/herald-x/b.sock' }, {}).socketPath,
    ).toBe('/tmp/herald-x/b.sock');
  });
});
