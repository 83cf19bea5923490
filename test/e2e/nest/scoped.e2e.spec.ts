import {
  Controller,
  Inject,
  Injectable,
  Module,
  Scope,
  type INestApplicationContext,
} from '@nestjs/common';
import {
  ContextIdFactory,
  NestFactory,
  type ContextId,
  type ContextIdResolver,
  type ContextIdStrategy,
  type HostComponentInfo,
} from '@nestjs/core';
import {
  EVENT_PAYLOAD,
  EventPublisher,
  EventsModule,
  OnEvent,
  silentLogger,
  type HeraldEvent,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

const calls: {
  who: string;
  instance: number;
  eventId: string;
  injectedId: string;
  data: unknown;
}[] = [];
let instances = 0;

@Injectable({ scope: Scope.REQUEST })
class PerEvent {
  readonly instance = ++instances;
  constructor(@Inject(EVENT_PAYLOAD) private readonly event: HeraldEvent) {}

  @OnEvent('scoped')
  first(data: unknown, event: HeraldEvent): void {
    calls.push({
      who: 'first',
      instance: this.instance,
      eventId: event.id,
      injectedId: this.event.id,
      data,
    });
  }

  @OnEvent('scoped', 'x')
  second(data: unknown, event: HeraldEvent): void {
    calls.push({
      who: 'second',
      instance: this.instance,
      eventId: event.id,
      injectedId: this.event.id,
      data,
    });
  }
}

/** A request-scoped dependency makes this controller scoped too. */
@Controller()
class ScopedController {
  constructor(private readonly perEvent: PerEvent) {}
  @OnEvent('scoped-controller')
  handle(_data: unknown, event: HeraldEvent): void {
    calls.push({
      who: 'controller',
      instance: this.perEvent.instance,
      eventId: event.id,
      injectedId: event.id,
      data: null,
    });
  }
}

/** One durable sub-tree per tenant, chosen from the event's headers. */
class TenantStrategy implements ContextIdStrategy<HeraldEvent> {
  private readonly tenants = new Map<string, ContextId>();
  attach(contextId: ContextId, event: HeraldEvent): ContextIdResolver {
    const tenant = event.headers.tenant ?? 'none';
    let tree = this.tenants.get(tenant);
    if (!tree) {
      tree = ContextIdFactory.create();
      this.tenants.set(tenant, tree);
    }
    const durableTree = tree;
    return {
      resolve: (info: HostComponentInfo) => (info.isTreeDurable ? durableTree : contextId),
      payload: { tenant },
    };
  }
}

@Injectable({ scope: Scope.REQUEST, durable: true })
class TenantCounter {
  readonly instance = ++instances;
  count = 0;
  constructor(@Inject(EVENT_PAYLOAD) readonly payload: { tenant: string }) {}

  @OnEvent('tenant')
  onTenant(): void {
    this.count++;
    calls.push({
      who: `tenant:${this.payload.tenant}:${this.count}`,
      instance: this.instance,
      eventId: '',
      injectedId: '',
      data: null,
    });
  }
}

describe('request-scoped and durable @OnEvent providers (e2e)', () => {
  let app: INestApplicationContext;
  let publisher: EventPublisher;

  beforeAll(async () => {
    ContextIdFactory.apply(new TenantStrategy());
    @Module({
      imports: [EventsModule.forRoot({ logger: silentLogger })],
      controllers: [ScopedController],
      providers: [PerEvent, TenantCounter],
    })
    class AppModule {}
    app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    publisher = app.get(EventPublisher);
  });

  afterAll(async () => {
    await app.close();
    ContextIdFactory.apply(undefined as unknown as ContextIdStrategy);
  });

  beforeEach(() => void calls.splice(0));

  it('builds a fresh context per event, shared by its handlers, with the event injected', async () => {
    const a = await publisher.post('scoped', 'x', 'a');
    const b = await publisher.post('scoped', 'x', 'b');
    await waitFor(() => calls.length === 4);
    const ofA = calls.filter(c => c.eventId === a.id);
    const ofB = calls.filter(c => c.eventId === b.id);
    expect(ofA.map(c => c.who).sort()).toEqual(['first', 'second']);
    expect(new Set(ofA.map(c => c.instance)).size).toBe(1);
    expect(new Set(ofB.map(c => c.instance)).size).toBe(1);
    expect(ofA[0].instance).not.toBe(ofB[0].instance);
    expect(calls.every(c => c.injectedId === c.eventId)).toBe(true);
    expect(ofA.map(c => c.data)).toEqual(['a', 'a']);
  });

  it('resolves a scoped controller per event', async () => {
    const a = await publisher.post('scoped-controller', 'x', null);
    const b = await publisher.post('scoped-controller', 'x', null);
    await waitFor(() => calls.length === 2);
    expect(calls.map(c => c.eventId)).toEqual([a.id, b.id]);
    expect(calls[0].instance).not.toBe(calls[1].instance);
  });

  it('keeps one durable instance per tenant, with the strategy payload injected', async () => {
    await publisher.post('tenant', 'x', 1, { headers: { tenant: 'acme' } });
    await publisher.post('tenant', 'x', 2, { headers: { tenant: 'acme' } });
    await publisher.post('tenant', 'x', 3, { headers: { tenant: 'globex' } });
    await waitFor(() => calls.length === 3);
    expect(calls.map(c => c.who)).toEqual(['tenant:acme:1', 'tenant:acme:2', 'tenant:globex:1']);
    expect(calls[0].instance).toBe(calls[1].instance);
    expect(calls[2].instance).not.toBe(calls[0].instance);
  });
});
