import type { HandlerOptions } from '../bus/event-bus.registry.js';

/**
 * The options of `@OnEvent(source?, ...events, options)`: `prepend` runs the
 * handler before those registered earlier, `timeoutMs` is its own
 * `handlerTimeoutMs`.
 * @publicApi
 */
export type OnEventOptions = HandlerOptions;

/**
 * What one `@OnEvent(source?, ...events, options?)` stores: the arguments of
 * `register(handler, source?, ...events, options?)`.
 * @publicApi
 */
export interface OnEventMetadata {
  /** No source = every event; `'*'` with events = those events of any source. */
  readonly source?: string;
  readonly events: readonly string[];
  readonly options?: OnEventOptions;
}
