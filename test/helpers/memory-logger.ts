import type { HeraldLogger } from '../../lib/index.js';

/**
 * A logger that keeps its lines for assertions: `warn ...`, `error ...`,
 * `debug ...` when `debug` is on (off by default: state transitions log at
 * debug and would crowd counts), and `log` lines as they are or with
 * `logPrefix`.
 */
export function memoryLogger(
  options: { debug?: boolean; logPrefix?: string } = {},
): HeraldLogger & { lines: string[] } {
  const lines: string[] = [];
  const { debug = false, logPrefix = '' } = options;
  return {
    lines,
    log: message => void lines.push(`${logPrefix}${message}`),
    warn: message => void lines.push(`warn ${message}`),
    error: message => void lines.push(`error ${message}`),
    debug: message => void (debug && lines.push(`debug ${message}`)),
  };
}
