// Issue 17 point 4: handlers of a module loaded with Nest's LazyModuleLoader.
import { Injectable, Module, Scope } from '@nestjs/common';
import { LazyModuleLoader, NestFactory } from '@nestjs/core';
import {
  EventPublisher,
  EventsModule,
  HeraldLazyModuleLoader,
  OnEvent,
  silentLogger,
} from '../../../lib/index.js';

const calls: string[] = [];

@Injectable()
class ReportsHandler {
  @OnEvent('reports', 'requested')
  build(data: { id: number }): void {
    calls.push(`static ${data.id}`);
  }
}

@Injectable({ scope: Scope.REQUEST })
class ScopedReportsHandler {
  @OnEvent('reports', 'requested')
  audit(data: { id: number }): void {
    calls.push(`scoped ${data.id}`);
  }
}

@Module({ providers: [ReportsHandler, ScopedReportsHandler] })
class ReportsModule {}

@Module({ imports: [EventsModule.forRoot({ logger: silentLogger })] })
class AppModule {}

describe('lazy modules', () => {
  afterEach(() => calls.splice(0));

  it('HeraldLazyModuleLoader registers the handlers of a lazily loaded module, once however often it loads', async () => {
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const events = app.get(EventPublisher);
    const loader = app.get(HeraldLazyModuleLoader);
    await events.postLocal('reports', 'requested', { id: 1 }, { wait: true });
    expect(calls).toEqual([]);
    await loader.load(() => ReportsModule);
    await loader.load(() => ReportsModule);
    await Promise.all([loader.load(() => ReportsModule), loader.load(() => ReportsModule)]);
    await events.postLocal('reports', 'requested', { id: 2 }, { wait: true });
    expect(calls).toEqual(['static 2', 'scoped 2']);
    expect(events.stats().handlers).toBe(2);
    await app.close();
  });

  it("Nest's own LazyModuleLoader registers nothing (the trap HeraldLazyModuleLoader closes); a later Herald load picks them up", async () => {
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const events = app.get(EventPublisher);
    await app.get(LazyModuleLoader).load(() => ReportsModule);
    await events.postLocal('reports', 'requested', { id: 3 }, { wait: true });
    expect(calls).toEqual([]);
    await app.get(HeraldLazyModuleLoader).load(() => ReportsModule);
    await events.postLocal('reports', 'requested', { id: 4 }, { wait: true });
    expect(calls).toEqual(['static 4', 'scoped 4']);
    await app.close();
  });
});
