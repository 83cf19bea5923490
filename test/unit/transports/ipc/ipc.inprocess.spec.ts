import path from 'node:path';
import { EventBus, silentLogger } from '../../../../lib/index.js';
import { IpcTransport } from '../../../../lib/transports/ipc/ipc.transport.js';
import { waitFor } from '../../../helpers/wait-for.js';
import { tempDir } from '../../../helpers/temp-dir.js';

const dir = tempDir('herald-ipc-');

describe('ipc transport in one process', () => {
  const buses: EventBus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map(bus => bus.close({ timeoutMs: 2000 })));
  });

  it('delivers a post to every worker, the sender included', async () => {
    const socketPath = path.join(dir, 'a.sock');
    for (let id = 0; id < 3; id++) {
      const bus = new EventBus({
        logger: silentLogger,
        transport: new IpcTransport({ socketPath, workerId: id, workerCount: 3 }),
      });
      buses.push(bus);
    }
    const got: string[][] = [[], [], []];
    buses.forEach((bus, i) => bus.register(data => void got[i].push(data as string), 'a'));
    await buses[0].connect();
    await Promise.all(buses.slice(1).map(bus => bus.connect()));
    buses.forEach(bus => bus.start());
    for (let i = 0; i < 100; i++) void buses[i % 3].post('a', 'b', `m${i}`);
    await buses[1].post('a', 'b', 'last');
    await waitFor(() => got.every(list => list.length === 101));
    expect(got[0]).toEqual(got[1]);
    expect(got[1]).toEqual(got[2]);
  });
});
