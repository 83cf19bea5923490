import { WarningLimiter } from '../../../../lib/common/warning-limiter.js';
import type { HeraldLogger } from '../../../../lib/index.js';
import { encodeEventBody } from '../../../../lib/transports/ipc/ipc.codec.js';
import { FrameWriter } from '../../../../lib/transports/ipc/ipc.frame.js';
import { PrivilegedAgent } from '../../../../lib/transports/ipc/ipc.privileged.js';
import { waitFor } from '../../../helpers/wait-for.js';

function body(source: string, event: string, data: unknown, id = `${source}-${event}`): Buffer {
  const w = new FrameWriter();
  encodeEventBody(w, {
    id,
    source,
    event,
    payload: JSON.stringify(data),
    origin: 'test',
    occurredAt: 't',
  });
  return w.take();
}

function setup(maxQueueLength = 10) {
  const lines: string[] = [];
  const logger: HeraldLogger = {
    log: m => void lines.push(m),
    warn: m => void lines.push(`warn ${m}`),
    error: m => void lines.push(`error ${m}`),
  };
  const agent = new PrivilegedAgent(maxQueueLength, logger, new WarningLimiter(logger));
  return { agent, lines };
}

describe('ipc privileged agent', () => {
  it('keeps events until a handler registers, then hands them over in order, filtered by source and event', async () => {
    const { agent } = setup();
    agent.push(body('a', 'x', 1, 'i1'));
    agent.push(body('b', 'y', 2, 'i2'));
    agent.push(body('a', 'z', 3, 'i3'));
    const all: unknown[] = [];
    const onlyAx: unknown[] = [];
    agent.register(data => void all.push(data));
    agent.register(data => void onlyAx.push(data), 'a', ['x']);
    await waitFor(() => agent.stats().handled === 3);
    expect(all).toEqual([1, 2, 3]);
    expect(onlyAx).toEqual([1]);
  });

  it('drops the oldest from its full queue, counted and logged once per interval', () => {
    const { agent, lines } = setup(2);
    for (let i = 0; i < 5; i++) agent.push(body('s', `e${i}`, i));
    expect(agent.stats()).toMatchObject({ received: 5, dropped: 3, queued: 2 });
    const warnings = lines.filter(l => l.includes("privileged agent's queue is full"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('s/e0');
  });

  it('a failing handler is logged and counted; the next handlers and events still run; unregister stops it', async () => {
    const { agent, lines } = setup();
    const got: unknown[] = [];
    agent.register(() => {
      throw new Error('boom');
    });
    const off = agent.register(data => void got.push(data));
    agent.push(body('s', 'e', 1, 'id-1'));
    await waitFor(() => agent.stats().handled === 1);
    expect(got).toEqual([1]);
    expect(agent.stats().handlerErrors).toBe(1);
    expect(lines.some(l => l.startsWith('error ') && l.includes('s/e (id id-1)'))).toBe(true);
    off();
    agent.push(body('s', 'e', 2, 'id-2'));
    await waitFor(() => agent.stats().handled === 2);
    expect(got).toEqual([1]);
  });
});
