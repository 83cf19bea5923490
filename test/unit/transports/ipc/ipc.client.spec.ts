import path from 'node:path';
import { InvalidOptionsError } from '../../../../lib/common/errors.js';
import { silentLogger } from '../../../../lib/common/logger.js';
import type { TransportState } from '../../../../lib/interfaces/transport.interface.js';
import { IpcBroker } from '../../../../lib/transports/ipc/ipc.broker.js';
import { IpcClient, type IpcClientOptions } from '../../../../lib/transports/ipc/ipc.client.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { tempDir } from '../../../helpers/temp-dir.js';
import { waitFor } from '../../../helpers/wait-for.js';

const root = tempDir('herald-client-');
let n = 0;

function options(socketPath: string, extra: Partial<IpcClientOptions> = {}): IpcClientOptions {
  return {
    socketPath,
    workerId: 0,
    window: 16,
    postTimeoutMs: 5000,
    maxFrameBytes: 1 << 20,
    maxQueueLength: 16,
    logger: silentLogger,
    deliver: delivery => delivery.settle({ outcome: 'ack' }),
    ...extra,
  };
}

describe('ipc client', () => {
  it('status$ is the one status: connecting, connected, disconnected + reconnecting with the reason, connected, closed; the deprecated callback is fed from it', async () => {
    const socketPath = path.join(root, `s${n++}.sock`);
    const logger = memoryLogger();
    let broker = new IpcBroker({ socketPath }, { logger: silentLogger });
    await broker.listen();
    const viaCallback: string[] = [];
    const client = new IpcClient(
      options(socketPath, {
        logger,
        status: (state: TransportState, reason?: string) =>
          void viaCallback.push(`${state}${reason ? ` (${reason})` : ''}`),
      }),
    );
    const viaStatus: string[] = [];
    client.status$.subscribe(
      s => void viaStatus.push(`${s.state}${s.reason ? ` (${s.reason})` : ''}`),
    );
    await client.connect();
    await broker.close();
    await waitFor(() => viaStatus.at(-1)?.startsWith('reconnecting') === true);
    broker = new IpcBroker({ socketPath }, { logger: silentLogger });
    await broker.listen();
    client.retryNow();
    await waitFor(() => client.isConnected);
    await client.close(100);
    await broker.close();
    const lost = 'connection to the broker closed';
    expect(viaStatus).toEqual([
      'connecting',
      'connected',
      `disconnected (${lost})`,
      `reconnecting (${lost})`,
      'connected (new broker)',
      'closed (closed by the application)',
    ]);
    // The adapter: every change after the first, as the callback always reported them.
    expect(viaCallback).toEqual(viaStatus.slice(1));
    // Loss at WARN with the reason, recovery at INFO with the downtime.
    expect(logger.lines.some(l => l.startsWith('warn ipc broker-lost:') && l.includes(lost))).toBe(
      true,
    );
    expect(
      logger.lines.some(l => /^ipc broker-recovered: .* after \d+ ms .*downtimeMs=\d+/.test(l)),
    ).toBe(true);
  });

  it.each([
    ['an unknown key', { colour: 'red' }, /ipc client: unknown option 'colour'/],
    [
      'a wrong-typed window',
      { window: '4' },
      /ipc client: window must be an integer from 1 to \d+ \(got "4", a string\)/,
    ],
    [
      'a missing deliver',
      { deliver: undefined },
      /ipc client: deliver must be a function \(got undefined\)/,
    ],
    [
      'a status that is not a function',
      { status: 1 },
      /ipc client: status must be a function \(got 1, a number\)/,
    ],
    [
      'a workerId below 0',
      { workerId: -1 },
      /ipc client: workerId must be an integer from 0 to 65534 \(got -1, a number\)/,
    ],
  ])('refuses %s with InvalidOptionsError naming it', (_name, extra, message) => {
    const make = (): IpcClient =>
      new IpcClient({ ...options('/tmp/x.sock'), ...(extra as object) } as IpcClientOptions);
    expect(make).toThrow(InvalidOptionsError);
    expect(make).toThrow(message);
  });
});

describe('ipc broker status$', () => {
  it('idle, listening (with the socket), closing, closed; then complete', async () => {
    const socketPath = path.join(root, `b${n++}.sock`);
    const broker = new IpcBroker({ socketPath }, { logger: silentLogger });
    const states: string[] = [];
    let completed = false;
    broker.status$.subscribe({
      next: s => void states.push(s.state),
      complete: () => (completed = true),
    });
    await broker.listen();
    expect(broker.state).toBe('listening');
    await broker.close();
    expect(states).toEqual(['idle', 'listening', 'closing', 'closed']);
    expect(completed).toBe(true);
  });
});
