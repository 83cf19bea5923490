// The `nest` variant of bench:ipc, apart so the other variants' worker
// processes do not compile Nest: an application context with
// EventsModule.forRoot({ transport: 'ipc' }) (the broker in the cluster
// primary) and one @OnEvent handler; posts go through EventPublisher.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPublisher, EventsModule, OnEvent, silentLogger } from '../lib/index.js';

type Handler = (data: { t: number; w: number }) => void;
let handler: Handler = () => undefined;

@Injectable()
class BenchListener {
  @OnEvent('bench', 'e')
  onEvent(data: { t: number; w: number }): void {
    handler(data);
  }
}

@Module({
  imports: [EventsModule.forRoot({ transport: 'ipc', logger: silentLogger })],
  providers: [BenchListener],
})
class BenchModule {}

/** Starts the app; `onEvent` receives every delivered event's data. */
export async function startNestApp(
  onEvent: Handler,
): Promise<{ post(data: unknown): void; close(): Promise<void> }> {
  handler = onEvent;
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  await app.init();
  const publisher = app.get(EventPublisher);
  return {
    post: data => void publisher.post('bench', 'e', data).catch(() => undefined),
    close: () => app.close(),
  };
}
