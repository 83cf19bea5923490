import { ConsoleLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPublisher } from '../../lib/index.js';
import { WorkerModule } from './worker.module.js';

/** Four workers would print Nest's bootstrap lines four times: keep the app's own. */
class QuietBootLogger extends ConsoleLogger {
  override log(message: unknown, context?: string): void {
    if (context === 'NestFactory' || context === 'InstanceLoader') return;
    super.log(message, context);
  }
}

export async function runWorker(): Promise<void> {
  const app = await NestFactory.createApplicationContext(WorkerModule, {
    logger: new QuietBootLogger(),
  });
  app.enableShutdownHooks();
  await app.get(EventPublisher).waitUntilReady();
  // The primary disconnects us to stop: close the app (intake stops, handlers finish, posts flush).
  process.once('disconnect', () => {
    void app.close().then(() => process.exit(0));
  });
}
