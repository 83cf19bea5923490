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

/**
 * The shared library could not be found or opened (`dlopen` failed). An
 * undefined symbol gets a hint: link the library that defines it. @publicApi
 */
export class NativeLibraryError extends HeraldError {
  constructor(
    readonly lib: string,
    readonly reason: string,
  ) {
    const hint = /undefined symbol/.test(reason)
      ? '. The library needs a symbol no loaded library provides: link the library that defines it ' +
        '(a Python shim must link libpython: python3-config --ldflags --embed), or load a runtime ' +
        'defining it first with global: true'
      : '';
    super(`cannot load native runtime library "${lib}": ${reason}${hint}`);
  }
}

/**
 * The library's `libffi_init` / `lib_nonblocking_ffi_init` returned `rc != 0`,
 * or the library exports neither (then `rc` is undefined). The message names
 * the runtime, quotes the end of what init wrote to stderr, and, when that
 * mentions an undefined symbol, hints at `global: true`. @publicApi
 */
export class NativeInitError extends HeraldError {
  constructor(
    /** The runtime's `name` (the module's runtime name, or the file name). */
    readonly runtime: string,
    readonly lib: string,
    readonly rc: number | undefined,
    readonly reason: string,
    /** The tail of what init wrote to stderr, if anything. */
    readonly stderr = '',
    /** Why it may have failed and what to do (e.g. load with `global: true`). */
    readonly hint?: string,
  ) {
    const said = stderr.trim().split('\n').slice(-3).join(' | ');
    super(
      `native runtime "${runtime}" (${lib}) did not initialise: ${reason}` +
        (said ? `; it wrote: ${said.length > 600 ? `...${said.slice(-600)}` : said}` : '') +
        (hint ? `. ${hint}` : ''),
    );
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
