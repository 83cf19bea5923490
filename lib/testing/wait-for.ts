import { describeError } from '../common/describe-error.js';

/**
 * Polls `predicate` until it returns a truthy value (or a promise of one),
 * then returns that value. Tests wait for conditions, never for time.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const intervalMs = options.intervalMs ?? 10;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError === undefined ? '' : ` (last error: ${describeError(lastError)})`;
      throw new Error(
        `waitFor timed out after ${timeoutMs} ms: ${options.message ?? predicate.toString()}${detail}`,
      );
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs));
  }
}

/** Resolves on the next turn of the event loop after pending I/O callbacks. */
export function settleIo(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}
