/**
 * The logging seam. Nest's `Logger` satisfies it; so does `console`.
 * Messages never contain event data: only ids, sources, events and origins.
 * @publicApi
 */
export interface HeraldLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, stack?: string): void;
  debug?(message: string): void;
}

/** A logger that writes nothing, for tests and benchmarks. @publicApi */
export const silentLogger: HeraldLogger = {
  log: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
};

/** The default logger: warnings and errors to stderr, the rest discarded. @publicApi */
export const consoleLogger: HeraldLogger = {
  log: () => undefined,
  warn: message => console.warn(`[herald] ${message}`),
  error: (message, stack) => console.error(`[herald] ${message}${stack ? `\n${stack}` : ''}`),
  debug: () => undefined,
};
