import { EventBus, TransportClosedError, type Transport } from '../../../lib/index.js';
import { createTransport } from '../../../lib/transports/create-transport.js';
import { freePort } from '../../helpers/free-port.js';
import { memoryLogger } from '../../helpers/memory-logger.js';
import { waitFor } from '../../helpers/wait-for.js';

// close() while the transport is still connecting, to a server that is not
// there (a port nothing listens on): close() ends at its timeout, nothing it
// was handed reads as success, and postLocal handlers still finish.
// (The ipc case, a broker that never comes up, is in test/e2e/ipc/ipc.shutdown.e2e.spec.ts.)
async function unreachable(kind: 'pg' | 'redis'): Promise<Transport> {
  const port = await freePort();
  return kind === 'pg'
    ? createTransport({
        transport: 'pg',
        pg: { connectionString: `postgres://127.0.0.1:${port}/test` },
      } as never)
    : createTransport({ transport: 'redis', redis: { url: `redis://127.0.0.1:${port}` } } as never);
}

describe.each(['pg', 'redis'] as const)('EventBus.close() while %s is unreachable', kind => {
  it('ends at its timeout: connect() and the waiting posts reject with TransportClosedError, one warning counts them, a running postLocal handler finishes', async () => {
    const logger = memoryLogger();
    const bus = new EventBus({ transport: await unreachable(kind), logger });
    let release!: () => void;
    const order: string[] = [];
    bus.register(async (data: unknown) => {
      await new Promise<void>(resolve => (release = resolve));
      order.push(`handled ${String(data)}`);
    }, 'local');
    bus.start();
    const connect = bus.connect();
    const posts = [bus.post('away', 'tick', 1), bus.post('away', 'tick', 2)];
    const outcomes = Promise.allSettled([connect, ...posts]);
    const local = bus.postLocal('local', 'tick', 'here');
    await waitFor(() => bus.stats().running === 1);
    const closed = bus.close({ timeoutMs: 500 }).then(() => order.push('closed'));
    // close() has begun and the handler still runs: close() must not return before it ends.
    release();
    await closed;
    await local;
    expect(order).toEqual(['handled here', 'closed']);
    for (const outcome of await outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(TransportClosedError);
    }
    expect(bus.state).toBe('closed');
    expect(bus.stats().publishFailed).toBe(2);
    const warning = logger.lines.find(line => line.includes('bus-shutdown-connect-timeout'));
    expect(warning).toContain(`transport ${kind} was still connecting; 2 waiting post(s)`);
    expect(logger.lines.some(line => line.includes('bus-connect-failed'))).toBe(false);
    expect(logger.lines.some(line => line.includes('bus-shutdown-timeout'))).toBe(false);
  }, 30_000);
});
