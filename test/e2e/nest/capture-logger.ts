import type { HeraldLogger } from '../../../lib/index.js';

/** A HeraldLogger that keeps every line, for asserting what was (and was not) logged. */
export class CaptureLogger implements HeraldLogger {
  readonly lines: { level: string; message: string; stack?: string }[] = [];
  log(message: string): void {
    this.lines.push({ level: 'log', message });
  }
  warn(message: string): void {
    this.lines.push({ level: 'warn', message });
  }
  error(message: string, stack?: string): void {
    this.lines.push({ level: 'error', message, stack });
  }
  debug(message: string): void {
    this.lines.push({ level: 'debug', message });
  }
  text(): string {
    return this.lines.map(line => `${line.level} ${line.message}\n${line.stack ?? ''}`).join('\n');
  }
}
