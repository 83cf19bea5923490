import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPublisher, EventsModule, LocalTransport } from '../../lib/index.js';
import { transportConformance, type BusLike } from '../../lib/testing/index.js';

/**
 * The whole suite through the Nest face: each instance is a Nest app whose
 * EventsModule runs the transport under test, driven through its injected
 * EventPublisher; `close` is `app.close()`.
 */
transportConformance({
  name: 'local through EventsModule',
  features: new LocalTransport().features,
  createTransport: () => new LocalTransport(),
  async createInstance(transport, busOptions): Promise<BusLike> {
    @Module({ imports: [EventsModule.forRoot({ ...busOptions, transport })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const publisher = app.get(EventPublisher);
    await publisher.waitUntilReady();
    let closing: Promise<void> | undefined;
    return Object.assign(Object.create(publisher) as EventPublisher, {
      close: () => (closing ??= app.close()),
    });
  },
});
