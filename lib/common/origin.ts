import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';

const instance = randomUUID().slice(0, 8);

/** This process's origin: host, pid and a per-process instance id. */
export function processOrigin(): string {
  return `${hostname()}/${process.pid}/${instance}`;
}
