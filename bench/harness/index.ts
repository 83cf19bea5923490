// The benches' shared harness: rounds, CPU accounting, statistics, smoke mode.
export * from './harness.before-after.js';
export * from './harness.cpu.js';
export * from './harness.env.js';
export * from './harness.otel.js';
export * from './harness.rounds.js';
export * from './harness.stats.js';
export * from './harness.callgrind.js';
export * from './harness.heap-sites.js';
