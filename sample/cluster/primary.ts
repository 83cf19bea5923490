import type { Worker } from 'node:cluster';
import { forkWorkers, startBroker } from '../../lib/index.js';
import type { WorkerReport } from './worker.module.js';

const WORKERS = 4;

export async function runPrimary(serve: boolean): Promise<void> {
  const log = (line: string): void => console.log(`[primary pid ${process.pid}] ${line}`);
  // Under node:cluster the broker stays here, in the primary: the workers die
  // with it, so there is nobody to fail over to (failover is for independent
  // processes, as under pm2; cluster workers never elect a broker).
  const broker = await startBroker({ workerCount: WORKERS });
  log(`broker listening on ${broker.socketPath}`);
  const group = forkWorkers(WORKERS, { broker });

  const saw = new Map<number, number>();
  const reloads: WorkerReport[] = [];
  let announced = false;
  let finished = false;
  const watchdog = setTimeout(() => {
    log(`gave up after 60 s: ${JSON.stringify(broker.stats())}`);
    process.exit(1);
  }, 60_000);

  broker.on('connected', (workerId, pid) => {
    log(`worker ${workerId} connected (pid ${pid}); ${broker.connectedWorkers.length}/${WORKERS}`);
    if (!announced && broker.connectedWorkers.length === WORKERS) {
      announced = true;
      // Every worker hears it in the same order as everything else.
      broker.post('cluster', 'ready', { workers: WORKERS });
    }
  });

  const onReport = (report: WorkerReport): void => {
    if (report.kind === 'saw-upstream-down') saw.set(report.workerId, report.pid);
    if (report.kind === 'reloaded') reloads.push(report);
    maybeFinish();
  };
  const watch = (worker: Worker): void =>
    void worker.on('message', (m: WorkerReport) => onReport(m));
  for (const worker of group.workers.values()) watch(worker);
  // The broker counts the dropped repeats after the reports arrive: look again until all are in.
  const poll = setInterval(() => maybeFinish(), 50);

  const maybeFinish = (): void => {
    const stats = broker.stats();
    // All 4 cache/refresh posts reached the broker: one delivered, three dropped as repeats.
    if (finished || saw.size < WORKERS || reloads.length < 1 || stats.uniqueDropped < WORKERS - 1)
      return;
    finished = true;
    clearTimeout(watchdog);
    clearInterval(poll);
    log('--- summary ---');
    log(
      `health/upstream-down reached ${saw.size}/${WORKERS} workers: ${[...saw]
        .sort((a, b) => a[0] - b[0])
        .map(([id, pid]) => `#${id} (pid ${pid})`)
        .join(', ')}`,
    );
    log(
      `cache/refresh posted by ${WORKERS} workers with one unique key: reloaded by ${reloads.length} (worker #${reloads[0].workerId}, pid ${reloads[0].pid}); ${stats.uniqueDropped} repeats dropped by the broker`,
    );
    log(
      `broker stats: posted ${stats.posted}, delivered ${stats.delivered}, dropped ${stats.dropped}, refused frames ${stats.refusedFrames}, queue high-water ${stats.queueHighWater}`,
    );
    if (serve) {
      log('serving (--serve); Ctrl-C to stop');
      return;
    }
    void shutdown();
  };

  const shutdown = async (): Promise<void> => {
    // Workers close their Nest apps (flushing what they posted), then the broker closes.
    await group.stop();
    await broker.close();
    log('all workers stopped; bye');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}
