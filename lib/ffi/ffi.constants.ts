/** The original's `max_queue` default. @publicApi */
export const DEFAULT_MAX_QUEUE = 65536;

/** Injection token of the options given to `FfiModule.forRoot(Async)`. */
export const FFI_MODULE_OPTIONS = Symbol('HERALD_FFI_MODULE_OPTIONS');

/** The token under which a runtime named `name` is provided. @publicApi */
export function getRuntimeToken(name: string): string {
  return `HeraldFfiRuntime:${name}`;
}
