// The cluster sample with /health and /metrics on every worker.
//   node --import ./scripts/register-ts.mjs sample/observability/main.ts [--once]
// The node:cluster primary starts the ipc broker and forks 2 workers; each
// worker starts the OpenTelemetry SDK (Prometheus exporter, no server of its
// own) before its Nest app, then serves GET /health (terminus) and GET
// /metrics (the exporter's text) on PORT + worker id (PORT defaults to 3100).
// Worker 0 posts orders/created every 100 ms; every worker handles it.
// `--once`: each worker scrapes its own /metrics after 20 events, prints the
// herald_* lines and the primary exits 0 (what the sample test runs).
import 'reflect-metadata';
import cluster from 'node:cluster';

if (cluster.isPrimary) {
  const { runPrimary } = await import('./primary.js');
  await runPrimary(process.argv.includes('--once'));
} else {
  const { runWorker } = await import('./worker.js');
  await runWorker(process.argv.includes('--once'));
}
