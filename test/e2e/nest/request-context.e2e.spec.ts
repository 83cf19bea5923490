// Issue 17 point 3: inheritRequestContextId, over real HTTP (express), with
// request-scoped providers on both sides.
import { Controller, Get, Inject, Injectable, Module, Req, Scope } from '@nestjs/common';
import { ContextIdFactory, NestFactory, REQUEST, type ContextId } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import {
  EventPublisher,
  EventsModule,
  InvalidEventError,
  OnEvent,
  silentLogger,
  type EventsModuleOptions,
} from '../../../lib/index.js';

let nextState = 0;
const heard: { via: string; state: number; sameRequest: boolean; url?: string }[] = [];

/** One per DI context: equal numbers mean one context. */
@Injectable({ scope: Scope.REQUEST })
class RequestState {
  readonly id = ++nextState;
}

@Injectable({ scope: Scope.REQUEST })
class Listener {
  constructor(
    private readonly state: RequestState,
    @Inject(REQUEST) private readonly request: { url?: string },
  ) {}

  @OnEvent('orders', 'created')
  onCreated(data: { via: string }): void {
    heard.push({
      via: data.via ?? 'request-as-data',
      state: this.state.id,
      sameRequest: this.request === lastRequest,
      url: this.request.url,
    });
  }
}

let lastRequest: object | undefined;

/** Request-scoped (it depends on RequestState): Nest's router gives the request a context id. */
@Controller()
class OrdersController {
  constructor(
    private readonly events: EventPublisher,
    private readonly state: RequestState,
  ) {}

  @Get('post')
  async viaPost(@Req() request: object) {
    lastRequest = request;
    await this.events.post('orders', 'created', { via: 'post' }, { request });
    await this.events.whenIdle();
    return { state: this.state.id };
  }

  @Get('post-local')
  async viaPostLocal(@Req() request: object) {
    lastRequest = request;
    await this.events.postLocal('orders', 'created', { via: 'postLocal' }, { request, wait: true });
    return { state: this.state.id };
  }

  @Get('request-as-data')
  async requestAsData(@Req() request: object) {
    lastRequest = request;
    // event-emitter's way: the payload is the request (it carries the context id).
    await this.events.postLocal('orders', 'created', request, { wait: true });
    return { state: this.state.id };
  }

  @Get('plain')
  async plain(@Req() request: object) {
    lastRequest = request;
    await this.events.postLocal('orders', 'created', { via: 'plain' }, { wait: true });
    return { state: this.state.id };
  }
}

/** A singleton controller: the request has no DI context until herald gives it one. */
@Controller('static')
class StaticController {
  constructor(private readonly events: EventPublisher) {}

  @Get('twice')
  async twice(@Req() request: object) {
    lastRequest = request;
    await this.events.postLocal('orders', 'created', { via: 'first' }, { request, wait: true });
    await this.events.postLocal('orders', 'created', { via: 'second' }, { request, wait: true });
    return {};
  }

  @Get('refused')
  async refused(@Req() request: object) {
    try {
      await this.events.post('orders', 'created', {}, { request });
      return { refused: false };
    } catch (error) {
      return { refused: error instanceof InvalidEventError, message: (error as Error).message };
    }
  }
}

let running: INestApplication | undefined;

async function listen(
  options: EventsModuleOptions,
): Promise<{ app: INestApplication; url: string }> {
  @Module({
    imports: [EventsModule.forRoot({ logger: silentLogger, ...options })],
    controllers: [OrdersController, StaticController],
    providers: [RequestState, Listener],
  })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  running = app;
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

async function get(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

describe('inheritRequestContextId over HTTP', () => {
  afterEach(async () => {
    heard.splice(0);
    await running?.close();
    running = undefined;
  });

  it('runs request-scoped handlers in the DI context of the request that posted', async () => {
    const { url } = await listen({ inheritRequestContextId: true });
    for (const path of ['post', 'post-local', 'request-as-data']) {
      heard.splice(0);
      const { state } = await get(`${url}/${path}`);
      expect(heard).toEqual([
        {
          via: path === 'post' ? 'post' : path === 'post-local' ? 'postLocal' : 'request-as-data',
          state,
          sameRequest: true,
          url: `/${path}`,
        },
      ]);
    }
    // Without `request`, an event gets its own context, as before.
    heard.splice(0);
    const { state } = await get(`${url}/plain`);
    expect(heard[0].state).not.toBe(state);
    expect(heard[0].sameRequest).toBe(false);
  });

  it('gives a request of a singleton controller one context, shared by all its events', async () => {
    const { url } = await listen({ inheritRequestContextId: true });
    await get(`${url}/static/twice`);
    expect(heard).toHaveLength(2);
    expect(heard[0].state).toBe(heard[1].state);
    expect(heard.every(h => h.sameRequest)).toBe(true);
  });

  it('without the option: each event its own context, and `request` is refused, saying which option', async () => {
    const { url } = await listen({});
    const { state } = await get(`${url}/request-as-data`);
    expect(heard[0].state).not.toBe(state);
    const refused = await get(`${url}/static/refused`);
    expect(refused.refused).toBe(true);
    expect(refused.message).toContain('inheritRequestContextId: true');
  });
});

describe('inheritRequestContextId and a ContextIdStrategy', () => {
  afterEach(() => {
    heard.splice(0);
    // Back to no strategy (ContextIdFactory.apply has no way to remove one).
    (ContextIdFactory as unknown as { strategy?: unknown }).strategy = undefined;
  });

  it('hands the posted request to the strategy, as event-emitter does', async () => {
    const attached: unknown[] = [];
    ContextIdFactory.apply({
      attach: (contextId: ContextId, request: unknown) => {
        attached.push(request);
        return () => contextId;
      },
    });
    @Module({
      imports: [EventsModule.forRoot({ logger: silentLogger, inheritRequestContextId: true })],
      providers: [RequestState, Listener],
    })
    class StrategyModule {}
    const app = await NestFactory.createApplicationContext(StrategyModule, { logger: false });
    try {
      const request = { url: '/from-a-queue' };
      lastRequest = request;
      await app
        .get(EventPublisher)
        .postLocal('orders', 'created', { via: 'strategy' }, { request, wait: true });
      expect(attached).toEqual([request]);
      expect(heard).toEqual([
        { via: 'strategy', state: expect.any(Number), sameRequest: true, url: '/from-a-queue' },
      ]);
    } finally {
      await app.close();
    }
  });
});
