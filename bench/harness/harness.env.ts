// What every bench reads from its environment: smoke mode and rounds, and the
// wrapper that turns any failure into a non-zero exit (a broken bench fails CI).
import { attachOtel } from './harness.otel.js';

/**
 * BENCH_SMOKE=1: every variant runs a fraction of a second through the same
 * code path as a full run, one round, so CI proves the bench still works.
 */
export const SMOKE = process.env.BENCH_SMOKE === '1';

/** `full` normally, `smoke` under BENCH_SMOKE=1. */
export function smokeOr<T>(full: T, smoke: T): T {
  return SMOKE ? smoke : full;
}

/** A numeric setting: the environment variable if set, else the full or smoke default. */
export function setting(name: string, full: number, smoke = full): number {
  const text = process.env[name];
  if (text === undefined || text === '') return smokeOr(full, smoke);
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * BENCH_VARIANTS=<regular expression>: only the variants whose name matches
 * run (bench/harness/otel-overhead.mjs runs herald's alone), and only the
 * comparisons between two of them are printed.
 */
export function selectVariants<T extends { name: string }>(variants: T[]): T[] {
  const pattern = process.env.BENCH_VARIANTS;
  if (!pattern) return variants;
  const chosen = variants.filter(variant => new RegExp(pattern).test(variant.name));
  if (chosen.length === 0)
    throw new Error(
      `BENCH_VARIANTS=${pattern} matches no variant of ${variants.map(v => v.name).join(', ')}`,
    );
  return chosen;
}

/** Interleaved rounds: BENCH_ROUNDS, else `full` (one round in smoke mode). */
export function rounds(full: number): number {
  return Math.max(1, setting('BENCH_ROUNDS', full, 1));
}

/**
 * Runs a bench's main and exits: 0 when it completed, 1 on any error (printed
 * with the bench's name), whatever handles are still open.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  // BENCH_OTEL (harness.otel.ts): the OpenTelemetry the run has, set up before the app starts.
  attachOtel()
    .then(async otel => {
      if (otel.line) console.log(otel.line);
      await main();
      await otel.stop();
    })
    .then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`${name}: FAILED`);
        console.error(error);
        process.exit(1);
      },
    );
}
