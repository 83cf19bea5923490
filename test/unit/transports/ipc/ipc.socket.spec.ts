import { chmodSync, lstatSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { EventBus, silentLogger } from '../../../../lib/index.js';
import { IpcBroker } from '../../../../lib/transports/ipc/ipc.broker.js';
import { IpcSocketError } from '../../../../lib/transports/ipc/ipc.errors.js';
import { BrokerLock, brokerLockName } from '../../../../lib/transports/ipc/ipc.lock.js';
import { IpcTransport } from '../../../../lib/transports/ipc/ipc.transport.js';
import { tempDir } from '../../../helpers/temp-dir.js';

const root = tempDir('herald-sock-');
let n = 0;
const fresh = (): string => path.join(root, `d${n++}`);

describe('ipc socket safety', () => {
  const brokers: IpcBroker[] = [];
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map(b => b.close()));
  });

  const start = async (socketPath: string): Promise<IpcBroker> => {
    const broker = new IpcBroker({ socketPath }, { logger: silentLogger });
    brokers.push(broker);
    await broker.listen();
    return broker;
  };

  it('creates a missing directory 0700 and the socket 0600', async () => {
    const dir = fresh();
    const socketPath = path.join(dir, 'b.sock');
    await start(socketPath);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(lstatSync(socketPath).isSocket()).toBe(true);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
  });

  it('refuses a directory others can enter', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o755);
    await expect(start(path.join(dir, 'b.sock'))).rejects.toThrow(IpcSocketError);
    await expect(start(path.join(dir, 'c.sock'))).rejects.toThrow(
      /mode 0755; other users could reach the socket: make it 0700/,
    );
  });

  it('refuses a symlinked directory (lstat, not stat)', async () => {
    const real = fresh();
    mkdirSync(real, { mode: 0o700 });
    const link = fresh();
    symlinkSync(real, link);
    await expect(start(path.join(link, 'b.sock'))).rejects.toThrow(
      /is a symlink; refusing to use it/,
    );
  });

  it('refuses to replace a file that is not a socket', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    const file = path.join(dir, 'b.sock');
    writeFileSync(file, 'precious');
    await expect(start(file)).rejects.toThrow(/exists and is not a socket; refusing to replace it/);
  });

  it('replaces a stale socket file nobody listens on', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    const socketPath = path.join(dir, 'b.sock');
    // A socket file left behind by a broker that was SIGKILLed.
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`,
    ]);
    await new Promise<void>(resolve => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise(resolve => child.once('exit', resolve));
    expect(lstatSync(socketPath).isSocket()).toBe(true);
    const broker = await start(socketPath);
    expect(broker.connectedWorkers).toEqual([]);
  });

  it('refuses to start a second broker while the first holds the broker lock', async () => {
    const socketPath = path.join(fresh(), 'b.sock');
    await start(socketPath);
    await expect(start(socketPath)).rejects.toThrow(/another process holds the broker lock/);
  });

  it('the lock holder still refuses a socket something else listens on (not a herald broker)', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    const socketPath = path.join(dir, 'b.sock');
    const foreign = net.createServer(socket => socket.destroy());
    await new Promise<void>(resolve => foreign.listen(socketPath, resolve));
    try {
      await expect(start(socketPath)).rejects.toThrow(/a broker is already listening on/);
      // The failed start released the lock: once the socket is free a broker starts.
    } finally {
      await new Promise<void>(resolve => foreign.close(() => resolve()));
    }
    const broker = await start(socketPath);
    expect(broker.connectedWorkers).toEqual([]);
  });

  it('the broker lock is released when the broker closes, and by the kernel when its holder dies', async () => {
    const socketPath = path.join(fresh(), 'b.sock');
    const first = await start(socketPath);
    expect(await BrokerLock.tryAcquire(socketPath)).toBeUndefined();
    await first.close();
    const lock = await BrokerLock.tryAcquire(socketPath);
    expect(lock).toBeDefined();
    await lock!.release();
    // A holder SIGKILLed: the abstract socket goes with the process.
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(brokerLockName(socketPath))}, () => console.log('held'))`,
    ]);
    await new Promise<void>(resolve => child.stdout.once('data', () => resolve()));
    expect(await BrokerLock.tryAcquire(socketPath)).toBeUndefined();
    await expect(start(socketPath)).rejects.toThrow(/another process holds the broker lock/);
    child.kill('SIGKILL');
    await new Promise(resolve => child.once('exit', resolve));
    const broker = await start(socketPath);
    expect(broker.connectedWorkers).toEqual([]);
  });

  it('a worker refuses to connect through an unsafe directory', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o777);
    const bus = new EventBus({
      logger: silentLogger,
      transport: new IpcTransport({ socketPath: path.join(dir, 'b.sock'), hostBroker: false }),
    });
    await expect(bus.connect()).rejects.toThrow(IpcSocketError);
    await bus.close();
  });
});
