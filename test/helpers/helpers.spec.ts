import net from 'node:net';
import { spawnNode, killAllChildren } from './processes.js';
import { Redis } from 'ioredis';
import { RespFaultProxy, respEnd } from './resp-fault-proxy.js';
import { TcpProxy } from './tcp-proxy.js';
import { REDIS_URL, hostPort } from './services.js';
import { waitFor } from './wait-for.js';

/** Sends PING over a fresh connection through the proxy; resolves the reply or the failure. */
function ping(port: number): Promise<string> {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('data', chunk => {
      resolve(chunk.toString().trim());
      socket.destroy();
    });
    socket.once('error', error => resolve(`error ${error.message}`));
    socket.once('close', () => resolve('closed'));
    socket.write('PING\r\n');
  });
}

describe('test helpers', () => {
  afterAll(killAllChildren);

  it('waitFor returns the first truthy value and times out with the message', async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? n : 0))).resolves.toBe(3);
    await expect(waitFor(() => false, { timeoutMs: 30, message: 'never true' })).rejects.toThrow(
      'never true',
    );
  });

  it('TcpProxy forwards to real Redis, cuts connections, refuses new ones, and restores', async () => {
    const { host, port } = hostPort(REDIS_URL);
    const proxy = new TcpProxy(host, port);
    const proxyPort = await proxy.start();
    try {
      expect(await ping(proxyPort)).toBe('+PONG');
      const held = net.connect(proxyPort, '127.0.0.1');
      await new Promise(resolve => held.once('connect', resolve));
      await waitFor(() => proxy.connections === 1);
      const closed = new Promise(resolve => held.once('close', resolve));
      proxy.cut();
      await closed;
      expect(await ping(proxyPort)).toBe('closed');
      proxy.restore();
      expect(await ping(proxyPort)).toBe('+PONG');
      expect(proxy.url(REDIS_URL)).toBe(`redis://127.0.0.1:${proxyPort}`);
    } finally {
      await proxy.close();
    }
  });

  it('TcpProxy black-holes open connections (no bytes, no close) and serves new ones', async () => {
    const { host, port } = hostPort(REDIS_URL);
    const proxy = new TcpProxy(host, port);
    const proxyPort = await proxy.start();
    try {
      const held = net.connect(proxyPort, '127.0.0.1');
      const replies: string[] = [];
      let closed = false;
      held.on('data', chunk => void replies.push(chunk.toString().trim()));
      held.on('close', () => void (closed = true));
      held.write('PING\r\n');
      await waitFor(() => replies.length === 1);
      proxy.blackhole();
      held.write('PING\r\n');
      // A fresh connection's answer proves the server answered by now, had it been asked.
      expect(await ping(proxyPort)).toBe('+PONG');
      await ping(proxyPort);
      expect(replies).toEqual(['+PONG']);
      expect(closed).toBe(false);
      held.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('respEnd finds where a RESP2 or RESP3 value ends, and -1 until it has all arrived', () => {
    const cases: [string, number][] = [
      ['+OK\r\n', 5],
      ['$3\r\nabc\r\n', 9],
      ['$-1\r\n', 5],
      ['*2\r\n:1\r\n$1\r\nx\r\n', 15],
      ['%1\r\n+k\r\n*1\r\n_\r\n', 15],
      ['|1\r\n+a\r\n+b\r\n:7\r\n', 16],
    ];
    for (const [text, end] of cases) {
      const data = Buffer.from(text + '+next\r\n', 'latin1');
      expect(respEnd(data, 0)).toBe(end);
      expect(respEnd(data.subarray(0, end - 1), 0)).toBe(-1);
    }
  });

  it('RespFaultProxy answers the commands it is told to refuse and keeps every reply in order', async () => {
    const { host, port } = hostPort(REDIS_URL);
    const proxy = new RespFaultProxy(host, port);
    await proxy.start();
    const client = new Redis(proxy.url(REDIS_URL));
    try {
      proxy.refuse(([name, key]) => name.toUpperCase() === 'GET' && key === 'refused', 'BUSY now');
      const pipeline = client.pipeline().echo('a').get('refused').echo('b').get('refused');
      const replies = await pipeline.exec();
      expect(replies?.map(([error, value]) => error?.message ?? value)).toEqual([
        'a',
        'BUSY now',
        'b',
        null,
      ]);
      expect(proxy.refused).toBe(1);
    } finally {
      client.disconnect();
      await proxy.close();
    }
  });

  it('spawnNode runs a TypeScript child with decorators, talks to it, and SIGKILLs it', async () => {
    const child = spawnNode('test/fixtures/helpers/echo-child.ts');
    await child.waitForLine(`ready ${child.pid}`);
    child.send('hello');
    await child.waitForLine('echo hello');
    await child.kill();
    expect(await child.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
