import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import type { NativeRuntimeOptions } from './native-runtime.js';

/** One runtime the module loads at start-up and provides under `name`. @publicApi */
export interface FfiRuntimeDefinition extends Omit<NativeRuntimeOptions, 'name'> {
  /** The injection name: `@InjectRuntime(name)`. */
  name: string;
  /** A path, a file name (`libdemo.so`) or a short name (`demo`), searched on LD_LIBRARY_PATH. */
  lib: string;
  /** Inject it wrapped by `withMethods`, so `runtime.anyName(req)` is a call. @default false */
  methods?: boolean;
}

/** Options of `FfiModule.forRoot`. @publicApi */
export interface FfiModuleOptions {
  runtimes: FfiRuntimeDefinition[];
  /** Register the module globally, so feature modules inject runtimes without importing it. @default true */
  isGlobal?: boolean;
}

/** Options of `FfiModule.forRootAsync`. @publicApi */
export interface FfiModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /**
   * The runtime names to provide for injection; the factory's options must
   * define each of them (the tokens have to be known before it runs).
   */
  names: string[];
  useFactory: (
    ...args: never[]
  ) => Omit<FfiModuleOptions, 'isGlobal'> | Promise<Omit<FfiModuleOptions, 'isGlobal'>>;
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  /** @default true */
  isGlobal?: boolean;
}
