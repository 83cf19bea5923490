// NODE_OPTIONS="--import ./scripts/register-ts.mjs --import ./bench/harness/otel-sdk.preload.ts"
// with BENCH_OTEL=sdk: the SDK, a Prometheus exporter and herald's telemetry
// in every Node process of a bench (otel-sdk.ts), its worker processes too,
// before their code runs: ipc's and tiered's posts and handlers run in
// workers, so attaching in the main process alone measured nothing of them.
// bench/harness/otel-overhead.mjs sets it for its sdk processes.
import { attachSdk } from './otel-sdk.js';

if (process.env.BENCH_OTEL === 'sdk') {
  const sdk = await attachSdk();
  // BENCH_OTEL_VERBOSE=1: each process says it has the SDK, and at its exit
  // what it exported (a worker's spans are batched: the last 200 ms unsent).
  if (process.env.BENCH_OTEL_VERBOSE === '1') {
    process.stderr.write(`${sdk.line}\n`);
    process.once('exit', () => process.stderr.write(`${sdk.summary()}\n`));
  }
}
