import { chmodSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connector } from '../../../../lib/transports/ipc/ipc.connector.js';
import { IpcSocketError } from '../../../../lib/transports/ipc/ipc.errors.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { tempDir } from '../../../helpers/temp-dir.js';
import { waitFor } from '../../../helpers/wait-for.js';

const root = tempDir('herald-connector-');
let n = 0;

function listen(socketPath: string): Promise<{ server: net.Server; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer(socket => accepted.push(socket));
  return new Promise(resolve => server.listen(socketPath, () => resolve({ server, accepted })));
}

function connector(socketPath: string, unsafe: (error: Error) => boolean = () => false) {
  const events: string[] = [];
  const logger = memoryLogger();
  const c = new Connector(
    socketPath,
    {
      opened: () => void events.push('opened'),
      data: chunk => void events.push(`data ${chunk.toString()}`),
      closed: () => void events.push('closed'),
      unsafe: error => {
        events.push(`unsafe ${error.message}`);
        return unsafe(error);
      },
    },
    logger,
  );
  return { c, events, logger };
}

describe('ipc client connector', () => {
  it('waits for the socket file, connects once it is there, passes data; reconnects after a close', async () => {
    const socketPath = path.join(root, `c${n++}.sock`);
    const { c, events } = connector(socketPath);
    c.start();
    const { server, accepted } = await listen(socketPath);
    await waitFor(() => events.includes('opened'));
    accepted[0].write('hi');
    await waitFor(() => events.includes('data hi'));
    accepted[0].destroy();
    await waitFor(() => events.includes('closed'));
    await waitFor(() => events.filter(e => e === 'opened').length === 2);
    c.stop();
    c.take()?.destroy();
    await new Promise(resolve => server.close(resolve));
    for (const s of accepted) s.destroy();
  });

  it('retryNow connects at once instead of at the end of the back-off', async () => {
    const socketPath = path.join(root, `c${n++}.sock`);
    const { c, events } = connector(socketPath);
    c.start();
    // Let the first attempts fail (no file yet).
    await new Promise(resolve => setImmediate(resolve));
    const { server, accepted } = await listen(socketPath);
    c.retryNow();
    await waitFor(() => events.includes('opened'));
    c.stop();
    c.take()?.destroy();
    await new Promise(resolve => server.close(resolve));
    for (const s of accepted) s.destroy();
  });

  it('a socket directory that fails the safety checks is logged with its code and reported to the client', async () => {
    const dir = tempDir('herald-connector-unsafe-');
    chmodSync(dir, 0o777);
    const { c, events, logger } = connector(path.join(dir, 'x.sock'), () => true);
    c.start();
    await waitFor(() => events.some(e => e.startsWith('unsafe ')));
    expect(events[0]).toMatch(/mode 0777/);
    expect(logger.lines.some(l => l.startsWith('error ipc socket-unsafe:'))).toBe(true);
    chmodSync(dir, 0o700);
    expect(new IpcSocketError('x')).toBeInstanceOf(Error);
  });
});
