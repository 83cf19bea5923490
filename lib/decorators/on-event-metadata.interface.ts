/**
 * What one `@OnEvent(source?, ...events)` stores: the arguments of
 * `register(handler, source?, ...events)`.
 * @publicApi
 */
export interface OnEventMetadata {
  /** No source = every event; `'*'` with events = those events of any source. */
  readonly source?: string;
  readonly events: readonly string[];
}
