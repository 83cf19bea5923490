// npm start: one host, 4 worker processes, one broker on a unix socket.
// The node:cluster primary (no Nest app) starts the broker and forks 4
// workers; each worker is a Nest app on the ipc transport. Once all 4 are
// connected, worker 0's health check posts health/upstream-down, every
// worker logs it and posts the same cache/refresh with one unique key, and
// exactly one worker reloads. Prints a summary and exits 0
// (`npm start -- --serve` keeps it running).
import 'reflect-metadata';
import cluster from 'node:cluster';

if (cluster.isPrimary) {
  const { runPrimary } = await import('./primary.js');
  await runPrimary(process.argv.includes('--serve'));
} else {
  const { runWorker } = await import('./worker.js');
  await runWorker();
}
