import { forkWorkers, startBroker } from '../../lib/index.js';

export const WORKERS = 2;

export async function runPrimary(once: boolean): Promise<void> {
  const broker = await startBroker({ workerCount: WORKERS });
  // Workers get this process's argv (--once included).
  const group = forkWorkers(WORKERS, { broker });
  let done = 0;
  const stop = async (code: number): Promise<void> => {
    await group.stop();
    await broker.close();
    process.exit(code);
  };
  for (const worker of group.workers.values()) {
    worker.on('message', (message: { kind?: string }) => {
      if (message.kind === 'scraped' && ++done === WORKERS) void stop(0);
    });
  }
  if (once) setTimeout(() => void stop(1), 60_000).unref();
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
}
