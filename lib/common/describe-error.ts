/**
 * One line naming an error for a log message: the message of an `Error`
 * (with its `code` when it has one, as Node's and the drivers' errors do),
 * else the value itself. The one way every layer turns a caught value into
 * text, so a log line reads the same whoever wrote it.
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = error.message || error.name;
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

/** The stack of an `Error`, for `logger.error(message, stack)`. */
export function stackOf(error: unknown): string | undefined {
  return error instanceof Error ? error.stack : undefined;
}
