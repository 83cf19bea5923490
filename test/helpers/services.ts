/**
 * Where the real servers are. `npm test` (scripts/test.mjs) checks them, or
 * starts throwaway ones, and exports PG_URL / REDIS_URL before Jest runs.
 */
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** host and port of a URL, for pointing a TcpProxy at it. */
export function hostPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || '127.0.0.1', port: Number(parsed.port) };
}

/** A name no other test (or test run) uses: for channels, streams, groups, sockets. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}
