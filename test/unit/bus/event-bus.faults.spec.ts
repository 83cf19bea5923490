import { BehaviorSubject } from 'rxjs';
import {
  EventBus,
  QueueFullError,
  silentLogger,
  type Envelope,
  type EventBusStatus,
  type PublishResult,
  type Transport,
  type TransportContext,
  type TransportStatus,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

const FEATURES = {
  reach: 'process' as const,
  guarantee: 'once' as const,
  ordering: 'global' as const,
  uniqueScope: 'process' as const,
  redelivers: false,
  loopback: true,
  persistent: false,
};

/**
 * A transport that fails on purpose. Its connect() policy retries `retries`
 * times; each retry waits for the test to call `retry()` (the injected
 * "timer"), so no test waits on the wall clock. Between attempts it reports
 * `reconnecting` with the cause, as the real transports do.
 */
class FailingTransport implements Transport {
  readonly name = 'failing';
  readonly features = FEATURES;
  readonly status$ = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
  attempts = 0;
  published: Envelope[] = [];
  closed = false;
  private nextAttempt?: () => void;

  constructor(
    private readonly retries: number,
    private readonly succeedOnAttempt = Infinity,
    private readonly throwIn?: string,
  ) {}

  /** Lets the pending retry run (what the back-off timer would do). */
  retry(): void {
    const next = this.nextAttempt;
    this.nextAttempt = undefined;
    next?.();
  }

  get waitingForRetry(): boolean {
    return this.nextAttempt !== undefined;
  }

  async connect(context: TransportContext): Promise<void> {
    for (;;) {
      this.attempts++;
      if (this.attempts >= this.succeedOnAttempt) {
        this.context = context;
        this.status$.next({ state: 'connected' });
        return;
      }
      const cause = new Error(`connect ECONNREFUSED (attempt ${this.attempts})`);
      if (this.attempts > this.retries) {
        this.status$.next({ state: 'disconnected', reason: cause.message });
        throw cause;
      }
      this.status$.next({ state: 'reconnecting', reason: cause.message });
      await new Promise<void>(resolve => (this.nextAttempt = resolve));
    }
  }
  context?: TransportContext;

  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (batch.some(envelope => envelope.event === this.throwIn)) {
      // Synchronously, as a careless transport would.
      throw new Error(`publish exploded on ${this.throwIn}`);
    }
    this.published.push(...batch);
    for (const envelope of batch) {
      this.context?.deliver({ envelope, attempt: 1, settle: () => undefined });
    }
    return Promise.resolve(batch.map(() => ({ ok: true as const })));
  }
  stats(): Record<string, number> {
    return { attempts: this.attempts };
  }
  async close(): Promise<void> {
    this.closed = true;
    this.status$.next({ state: 'closed' });
    this.status$.complete();
  }
}

/** Records how each promise settled, so a test can assert "still pending". */
function track<T>(promise: Promise<T>): { settled: string | undefined; promise: Promise<T> } {
  const tracked = { settled: undefined as string | undefined, promise };
  promise.then(
    () => (tracked.settled = 'resolved'),
    (error: unknown) => (tracked.settled = `rejected: ${(error as Error).message}`),
  );
  return tracked;
}

describe('EventBus faults settle', () => {
  const buses: EventBus[] = [];
  const make = (transport: Transport, maxPending?: number): EventBus => {
    const bus = new EventBus({ transport, logger: silentLogger, maxPending });
    buses.push(bus);
    return bus;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map(bus => bus.close({ timeoutMs: 1000 })));
  });

  it('a transport with no retry policy: waiting posts, connect() and later posts reject with its cause', async () => {
    const transport = new FailingTransport(0);
    const bus = make(transport);
    const statuses: EventBusStatus[] = [];
    bus.status$.subscribe(status => statuses.push(status));
    const waiting = bus.post('orders', 'created', { id: 1 });
    await expect(waiting).rejects.toThrow('connect ECONNREFUSED (attempt 1)');
    await expect(bus.connect()).rejects.toThrow('connect ECONNREFUSED (attempt 1)');
    await expect(bus.post('orders', 'created')).rejects.toThrow('connect ECONNREFUSED');
    await expect(bus.waitUntilReady()).rejects.toThrow('connect ECONNREFUSED');
    expect(bus.state).toBe('failed');
    expect(statuses.at(-1)).toEqual({
      state: 'disconnected',
      bus: 'failed',
      reason: 'connect ECONNREFUSED (attempt 1)',
    });
    expect(bus.stats().publishFailed).toBe(1);
    expect(transport.published).toEqual([]);
    // Closing a failed bus still closes its transport.
    await bus.close();
    expect(transport.closed).toBe(true);
    expect(bus.state).toBe('closed');
  });

  it('while connect() retries, posts wait (bounded) and status$ says reconnecting with the cause; when the policy gives up they reject', async () => {
    const transport = new FailingTransport(2);
    const bus = make(transport, 2);
    const statuses: EventBusStatus[] = [];
    bus.status$.subscribe(status => statuses.push(status));
    const connecting = track(bus.connect());
    const first = track(bus.post('orders', 'created', 1));
    const second = track(bus.post('orders', 'created', 2));
    await waitFor(() => transport.waitingForRetry);
    expect(statuses.at(-1)).toEqual({
      state: 'reconnecting',
      bus: 'reconnecting',
      reason: 'connect ECONNREFUSED (attempt 1)',
    });
    // The pre-bootstrap buffer is bounded: a third post is refused at once.
    await expect(bus.post('orders', 'created', 3)).rejects.toThrow(QueueFullError);
    expect([first.settled, second.settled, connecting.settled]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    transport.retry();
    await waitFor(() => statuses.at(-1)?.reason === 'connect ECONNREFUSED (attempt 2)');
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    transport.retry();
    const cause = 'rejected: connect ECONNREFUSED (attempt 3)';
    await waitFor(() => first.settled !== undefined && second.settled !== undefined);
    expect([first.settled, second.settled]).toEqual([cause, cause]);
    await waitFor(() => connecting.settled !== undefined);
    expect(connecting.settled).toBe(cause);
    await expect(bus.post('orders', 'later')).rejects.toThrow('attempt 3');
    expect(bus.state).toBe('failed');
  });

  it('posts that waited through failed attempts are sent once connect() succeeds', async () => {
    const transport = new FailingTransport(5, 2);
    const bus = make(transport);
    bus.start();
    const got: unknown[] = [];
    bus.register(data => void got.push(data), 'orders');
    const post = track(bus.post('orders', 'created', 'waited'));
    await waitFor(() => transport.waitingForRetry);
    expect(post.settled).toBeUndefined();
    transport.retry();
    await post.promise;
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['waited']);
    expect(bus.state).toBe('connected');
  });

  it('a close() while connect() retries rejects the waiting posts when the policy gives up', async () => {
    const transport = new FailingTransport(1);
    const bus = make(transport);
    const post = track(bus.post('orders', 'created'));
    await waitFor(() => transport.waitingForRetry);
    const closing = bus.close();
    transport.retry();
    await closing;
    await waitFor(() => post.settled !== undefined);
    expect(post.settled).toBe('rejected: connect ECONNREFUSED (attempt 2)');
    expect(transport.closed).toBe(true);
  });

  it('a publish() that throws synchronously rejects the posts of that batch; the bus goes on', async () => {
    const transport = new FailingTransport(0, 1, 'boom');
    const bus = make(transport);
    bus.start();
    await bus.connect();
    const got: unknown[] = [];
    bus.register((_data, event) => void got.push(event.event), 's');
    // One batch: both posts are published together, so both reject.
    const [a, b] = [bus.post('s', 'ok-in-batch'), bus.post('s', 'boom')];
    await expect(a).rejects.toThrow('publish exploded on boom');
    await expect(b).rejects.toThrow('publish exploded on boom');
    expect(bus.stats().publishFailed).toBe(2);
    await bus.post('s', 'after');
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['after']);
  });
});
