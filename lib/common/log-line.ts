/**
 * The one shape of every WARN and ERROR line the package writes, so an
 * operator can grep a line's code, find it in the README's "Log lines" table
 * and act on it:
 *
 *     redis group-reset: group g was missing; re-created at 1700000000000-0 [stream=orders lastId=1700000000000-0]
 *
 * `transport` names where it happened (`local`, `ipc`, `pg`, `redis`, `ffi`,
 * `bus`, `microservice`), `code` is a stable kebab-case name unique to that
 * line (the README table is keyed by it; `scripts/check-logs.mjs` checks
 * both), and `fields` carry what identifies the event or the resource —
 * `source`, `event`, `id` where there is one. Never event data.
 */
export type LogFieldValue = string | number | boolean | undefined | null;

/** What identifies the subject of a log line. `undefined` and `null` fields are left out. */
export interface LogFields {
  source?: string;
  event?: string;
  id?: string;
  [key: string]: LogFieldValue;
}

const PLAIN = /^[^\s"=\]]+$/;

/** Formats one WARN/ERROR line: `<transport> <code>: <message> [k=v ...]`. */
export function logLine(
  transport: string,
  code: string,
  message: string,
  fields?: LogFields,
): string {
  if (!fields) return `${transport} ${code}: ${message}`;
  let tail = '';
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    const text = String(value);
    tail += `${tail ? ' ' : ''}${key}=${PLAIN.test(text) ? text : JSON.stringify(text)}`;
  }
  return tail ? `${transport} ${code}: ${message} [${tail}]` : `${transport} ${code}: ${message}`;
}
