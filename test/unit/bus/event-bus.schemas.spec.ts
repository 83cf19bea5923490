// Issue 27 point 3 at the bus: `new EventBus({ schemas })` validates for
// apps that use the bus directly (EventsModule passes its schemas through).
// Before `post` sends (typed error naming the path, nothing sent) and before
// any handler runs; an invalid arrival is counted, logged without its data
// and nacked as undecodable.
import { z } from 'zod';
import {
  EventBus,
  EventValidationError,
  InvalidOptionsError,
  type Envelope,
  type HeraldLogger,
  type StandardSchemaResult,
  type StandardSchemaV1,
} from '../../../lib/index.js';
import { RecordingTransport } from '../../../lib/testing/index.js';
import { waitFor } from '../../helpers/wait-for.js';

function recordingLogger(): HeraldLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: () => undefined,
    warn: m => void lines.push(`warn ${m}`),
    error: m => void lines.push(`error ${m}`),
  };
}

/** A hand-written Standard Schema: what any validator library hands over. */
function schema<O>(
  validate: (value: unknown) => StandardSchemaResult<O> | Promise<StandardSchemaResult<O>>,
): StandardSchemaV1<unknown, O> & { calls: number } {
  const made = {
    calls: 0,
    '~standard': {
      version: 1 as const,
      vendor: 'test',
      validate: (value: unknown) => {
        made.calls++;
        return validate(value);
      },
    },
  };
  return made;
}

/** `{ amount: string }` in, `{ amount: number }` out; refuses anything else at `data.amount`. */
const amountSchema = () =>
  schema(value => {
    const amount = (value as { amount?: unknown } | null)?.amount;
    return typeof amount === 'string' && amount !== '' && !Number.isNaN(Number(amount))
      ? { value: { amount: Number(amount) } }
      : { issues: [{ message: `not a number: ${String(amount)}`, path: ['amount'] }] };
  });

async function setup(schemas: Record<string, Record<string, StandardSchemaV1>>) {
  const transport = new RecordingTransport();
  const logger = recordingLogger();
  const bus = new EventBus({ transport, logger, schemas });
  const seen: unknown[] = [];
  bus.register(data => void seen.push(data), 'orders');
  await bus.connect();
  bus.start();
  /** An envelope as another process would have posted it. */
  const remote = (event: string, data: unknown): Envelope => ({
    ...bus.envelope('orders', event, data),
    origin: 'peer-1',
  });
  return { bus, transport, logger, seen, remote };
}

describe('EventBus schemas', () => {
  it('post refuses invalid data with EventValidationError naming the path; nothing is sent', async () => {
    const { bus, transport, seen } = await setup({ orders: { paid: amountSchema() } });
    const error = await bus.post('orders', 'paid', { amount: 'ten' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventValidationError);
    expect((error as EventValidationError).path).toBe('data.amount');
    // The poster's own error carries the schema's message; it is not logged.
    expect((error as Error).message).toBe(
      'orders/paid data is invalid: data.amount: not a number: ten',
    );
    expect((error as EventValidationError).undecodable).toBe(false);
    await bus.whenIdle();
    expect(transport.envelopes).toEqual([]);
    expect(seen).toEqual([]);
    expect(bus.stats().posted).toBe(0);
    await bus.close();
  });

  it("sends the data as given; handlers receive the schema's output", async () => {
    const { bus, transport, seen } = await setup({ orders: { paid: amountSchema() } });
    await bus.post('orders', 'paid', { amount: '12.5' });
    await bus.whenIdle();
    expect(transport.envelopes.map(e => JSON.parse(e.payload as string))).toEqual([
      { amount: '12.5' },
    ]);
    expect(seen).toEqual([{ amount: 12.5 }]);
    // Events without a schema are not touched.
    await bus.post('orders', 'shipped', { amount: 'any' });
    await bus.whenIdle();
    expect(seen).toEqual([{ amount: 12.5 }, { amount: 'any' }]);
    await bus.close();
  });

  it('an invalid arrival runs no handler: counted in invalid, logged without data, nacked as undecodable', async () => {
    const { bus, transport, logger, seen, remote } = await setup({
      orders: { paid: amountSchema() },
    });
    const settled = await transport.deliver(remote('paid', { amount: 'secret-value' }), 2);
    expect(settled.outcome).toBe('nack');
    const error = (settled as { error: unknown }).error as EventValidationError;
    expect(error).toBeInstanceOf(EventValidationError);
    expect(error.undecodable).toBe(true);
    expect(error.path).toBe('data.amount');
    expect(error.message).not.toContain('secret');
    expect(error.issues[0].message).toContain('secret-value');
    expect(seen).toEqual([]);
    expect(bus.stats()).toMatchObject({ invalid: 1, failed: 0, handled: 0, nacked: 1 });
    expect(logger.lines).toEqual([
      expect.stringMatching(
        /^warn bus event-invalid: .*\[source=orders event=paid id=\S+ origin=peer-1 attempt=2 path=data\.amount\]$/,
      ),
    ]);
    expect(logger.lines.join('\n')).not.toContain('secret');
    // A valid one still runs, with the output.
    expect(await transport.deliver(remote('paid', { amount: '3' }))).toEqual({ outcome: 'ack' });
    expect(seen).toEqual([{ amount: 3 }]);
    await bus.close();
  });

  it('async schemas: post waits; arrivals keep their slot and their order', async () => {
    const slow = schema(async value => {
      await new Promise(resolve => setImmediate(resolve));
      return typeof (value as { n?: unknown }).n === 'number'
        ? { value }
        : { issues: [{ message: 'n must be a number', path: ['n'] }] };
    });
    const { bus, transport, seen, remote } = await setup({ orders: { counted: slow } });
    await expect(bus.post('orders', 'counted', { n: 'x' })).rejects.toThrow(
      'orders/counted data is invalid: data.n: n must be a number',
    );
    const settlements = [1, 'bad', 3].map(n => transport.deliver(remote('counted', { n })));
    const outcomes = (await Promise.all(settlements)).map(s => s.outcome);
    expect(outcomes).toEqual(['ack', 'nack', 'ack']);
    // concurrency 1: the second arrival waited for the first one's validation and handlers.
    expect(seen).toEqual([{ n: 1 }, { n: 3 }]);
    expect(bus.stats().invalid).toBe(1);
    await bus.whenIdle();
    await bus.close();
  });

  it('postLocal: handlers receive the output; an invalid one reports every handler rejected, runs none', async () => {
    const { bus, seen } = await setup({ orders: { paid: amountSchema() } });
    bus.postLocal('orders', 'paid', { amount: '7' });
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual([{ amount: 7 }]);
    const outcomes = await bus.postLocal('orders', 'paid', { amount: 'no' }, { wait: true });
    expect(outcomes).toEqual([
      { handler: 'anonymous', status: 'rejected', reason: expect.any(EventValidationError) },
    ]);
    await expect(
      bus.postLocal('orders', 'paid', { amount: 'no' }, { wait: true, rejectOnError: true }),
    ).rejects.toThrow(AggregateError);
    expect(seen).toHaveLength(1);
    expect(bus.stats().invalid).toBe(2);
    await bus.close();
  });

  it('a schema that throws refuses the event with its error (nacked, not undecodable)', async () => {
    const broken = new Error('schema bug');
    const { bus, transport, logger, seen, remote } = await setup({
      orders: {
        paid: schema(() => {
          throw broken;
        }),
      },
    });
    await expect(bus.post('orders', 'paid', {})).rejects.toBe(broken);
    const settled = await transport.deliver(remote('paid', {}));
    expect(settled).toEqual({ outcome: 'nack', error: broken });
    expect(seen).toEqual([]);
    expect(bus.stats().invalid).toBe(1);
    expect(logger.lines[0]).toMatch(
      /^warn bus event-invalid: the schema threw on event .*schema bug/,
    );
    await bus.close();
  });

  it('an event no handler matches is acked without being validated', async () => {
    const counted = amountSchema();
    const { bus, transport } = await setup({ billing: { paid: counted } });
    const envelope = { ...bus.envelope('billing', 'paid', { amount: 'no' }), origin: 'peer-1' };
    expect(await transport.deliver(envelope)).toEqual({ outcome: 'ack' });
    expect(counted.calls).toBe(0);
    expect(bus.stats()).toMatchObject({ invalid: 0, unhandled: 1 });
    await bus.close();
  });

  it('works with zod as given (a Standard Schema)', async () => {
    const { bus, seen, transport, remote } = await setup({
      orders: { created: z.object({ orderId: z.number().int() }) },
    });
    const error = await bus.post('orders', 'created', { orderId: 1.5 }).catch((e: unknown) => e);
    expect((error as EventValidationError).path).toBe('data.orderId');
    await bus.post('orders', 'created', { orderId: 2, extra: true });
    await bus.whenIdle();
    // zod strips unknown keys: the handler gets the output.
    expect(seen).toEqual([{ orderId: 2 }]);
    expect((await transport.deliver(remote('created', { orderId: 'x' }))).outcome).toBe('nack');
    await bus.close();
  });

  it('refuses schemas that are not Standard Schemas, naming the key', () => {
    expect(
      () =>
        new EventBus({
          transport: new RecordingTransport(),
          schemas: { orders: { created: { parse() {} } as never } },
        }),
    ).toThrow(InvalidOptionsError);
    expect(
      () =>
        new EventBus({
          transport: new RecordingTransport(),
          schemas: { orders: { created: { parse() {} } as never } },
        }),
    ).toThrow(/^EventBus: schemas\.orders\.created must be a Standard Schema/);
  });
});
