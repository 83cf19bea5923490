import { HeraldError } from '../common/errors.js';

/**
 * The runtime answered a call with `rc != 0`. `rc` is the runtime's return
 * code and `message` its answer as text (empty when it sent none); `response`
 * holds the raw answer bytes. @publicApi
 */
export class NativeRuntimeError extends HeraldError {
  constructor(
    readonly runtime: string,
    readonly rc: number,
    readonly response: Buffer,
  ) {
    const text = response.toString('utf8');
    super(`runtime "${runtime}" failed with rc ${rc}${text ? `: ${text}` : ''}`);
  }
}

/** The shared library could not be found or opened (`dlopen` failed). @publicApi */
export class NativeLibraryError extends HeraldError {
  constructor(
    readonly lib: string,
    readonly reason: string,
  ) {
    super(`cannot load native runtime library "${lib}": ${reason}`);
  }
}

/**
 * The library's `libffi_init` / `lib_nonblocking_ffi_init` returned `rc != 0`,
 * or the library exports neither (then `rc` is undefined). @publicApi
 */
export class NativeInitError extends HeraldError {
  constructor(
    readonly lib: string,
    readonly rc: number | undefined,
    reason: string,
  ) {
    super(`native runtime "${lib}" did not initialise: ${reason}`);
  }
}

/**
 * The runtime is unloaded (or being unloaded): the call never ran, or the
 * runtime cannot be loaded again in this process. @publicApi
 */
export class RuntimeUnloadedError extends HeraldError {}

/** A call got no answer within `timeoutMs`; a late answer is freed on arrival. @publicApi */
export class NativeCallTimeoutError extends HeraldError {
  constructor(
    readonly runtime: string,
    readonly timeoutMs: number,
  ) {
    super(`runtime "${runtime}" did not answer within ${timeoutMs} ms`);
  }
}

/** The native addon itself is missing or cannot be loaded in this process. @publicApi */
export class NativeAddonError extends HeraldError {}

/** A request that is neither a string nor bytes. @publicApi */
export class InvalidNativeRequestError extends HeraldError {}

/** `FfiModule` start-up failed: a runtime's library is missing or its init failed; `cause` has the detail. @publicApi */
export class FfiStartupError extends HeraldError {}
