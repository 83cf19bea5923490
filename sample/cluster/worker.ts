import { ConsoleLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPublisher } from '../../lib/index.js';
import { WorkerModule } from './worker.module.js';

export async function runWorker(): Promise<void> {
  // Quiet start-up (four workers would print Nest's bootstrap lines four times), then the app's own logs.
  const app = await NestFactory.createApplicationContext(WorkerModule, {
    logger: ['warn', 'error'],
  });
  app.useLogger(new ConsoleLogger({ logLevels: ['log', 'warn', 'error'] }));
  app.enableShutdownHooks();
  await app.get(EventPublisher).waitUntilReady();
  // The primary disconnects us to stop: close the app (intake stops, handlers finish, posts flush).
  process.once('disconnect', () => {
    void app.close().then(() => process.exit(0));
  });
}
