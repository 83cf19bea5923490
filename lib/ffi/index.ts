export { DEFAULT_MAX_QUEUE, getRuntimeToken } from './ffi.constants.js';
export * from './ffi.errors.js';
export type {
  FfiModuleAsyncOptions,
  FfiModuleOptions,
  FfiRuntimeDefinition,
} from './ffi.options.js';
export { FfiModule } from './ffi.module.js';
export { FfiRuntimes } from './ffi-runtimes.service.js';
export { InjectRuntime } from './inject-runtime.decorator.js';
export {
  withMethods,
  type NativeMethod,
  type NativeRuntimeWithMethods,
} from './runtime-methods.js';
export {
  NativeRuntime,
  resolveLibrary,
  type NativeCallOptions,
  type NativeRequest,
  type NativeRuntimeOptions,
  type NativeRuntimeStats,
  type NativeRuntimeState,
  type NativeRuntimeStatus,
  type NativeZeroLength,
} from './native-runtime.js';
