import path from 'node:path';
import { EventBus, silentLogger, type TransportStatus } from '../../../../lib/index.js';
import { ipcTestHooks } from '../../../../lib/transports/ipc/ipc.socket.js';
import { IpcTransport } from '../../../../lib/transports/ipc/ipc.transport.js';
import { tempDir } from '../../../helpers/temp-dir.js';
import { waitFor } from '../../../helpers/wait-for.js';

// Issue 21 point 4: the process elected broker reports connected with role
// broker once it serves, whatever the interleaving of its own client's
// connect and the election. The test hook delays the step between bind and
// chmod, where the client used to connect and be told "worker".
const root = tempDir('herald-status-');

interface Member {
  bus: EventBus;
  transport: IpcTransport;
  last(): TransportStatus | undefined;
}

async function member(socketPath: string, workerId: number): Promise<Member> {
  const transport = new IpcTransport({ socketPath, workerId, workerCount: 2, failover: true });
  let last: TransportStatus | undefined;
  transport.status$.subscribe(status => (last = status));
  const bus = new EventBus({ transport, logger: silentLogger });
  await bus.connect();
  bus.start();
  return { bus, transport, last: () => last };
}

describe('ipc transport: status after a takeover', () => {
  afterEach(() => {
    ipcTestHooks.afterBind = undefined;
  });

  it('the new broker ends connected with role broker, 100 takeovers with a delay injected between bind and chmod', async () => {
    const ROUNDS = Number(process.env.IPC_TAKEOVERS ?? 100);
    ipcTestHooks.afterBind = () => new Promise(resolve => setTimeout(resolve, 10));
    const socketPath = path.join(root, 'status.sock');
    let broker = await member(socketPath, 0);
    expect(broker.transport.isBroker).toBe(true);
    const wrong: { round: number; status: TransportStatus | undefined }[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const next = await member(socketPath, (round + 1) % 2);
        await waitFor(() => next.last()?.state === 'connected');
        await broker.bus.close({ timeoutMs: 1000 });
        await waitFor(() => next.transport.isBroker, { message: `round ${round}: a takeover` });
        // The final state once it serves: its client connected to its own broker.
        await waitFor(() => next.transport.stats().brokerWorkersConnected === 1);
        const settled = await waitFor(
          () => (next.last()?.state === 'reconnecting' ? undefined : next.last()),
          { timeoutMs: 5000, message: `round ${round}: status to leave reconnecting` },
        ).catch(() => next.last());
        if (settled?.state !== 'connected' || settled.role !== 'broker')
          wrong.push({ round, status: settled });
        broker = next;
      }
    } finally {
      await broker.bus.close({ timeoutMs: 1000 });
    }
    expect(wrong).toEqual([]);
  }, 300_000);
});
