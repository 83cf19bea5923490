import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { FFI_MODULE_OPTIONS, getRuntimeToken } from './ffi.constants.js';
import {
  resolveFfiModuleAsyncOptions,
  resolveFfiModuleOptions,
  type FfiModuleAsyncOptions,
  type FfiModuleOptions,
} from './ffi.options.js';
import { FfiRuntimes } from './ffi-runtimes.service.js';

function runtimeProviders(names: string[]): Provider[] {
  return names.map(name => ({
    provide: getRuntimeToken(name),
    useFactory: (runtimes: FfiRuntimes) => runtimes.get(name),
    inject: [FfiRuntimes],
  }));
}

/**
 * Loads native runtimes at start-up and provides each under its name
 * (`@InjectRuntime(name)`); unloads them at application shutdown (call
 * `app.enableShutdownHooks()` so signals reach it).
 * @publicApi
 */
@Module({})
export class FfiModule {
  /** Throws `InvalidOptionsError` for bad options (unknown keys included), before anything loads. */
  static forRoot(options: FfiModuleOptions): DynamicModule {
    const resolved = resolveFfiModuleOptions(options);
    const names = resolved.runtimes.map(runtime => runtime.name);
    const providers = [
      { provide: FFI_MODULE_OPTIONS, useValue: { runtimes: resolved.runtimes } },
      FfiRuntimes,
      ...runtimeProviders(names),
    ];
    return {
      module: FfiModule,
      global: resolved.isGlobal,
      providers,
      exports: [FfiRuntimes, ...names.map(getRuntimeToken)],
    };
  }

  /** Throws `InvalidOptionsError` for bad options; the factory's result is checked when it runs. */
  static forRootAsync(async: FfiModuleAsyncOptions): DynamicModule {
    const options = resolveFfiModuleAsyncOptions(async);
    const providers: Provider[] = [
      { provide: FFI_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject },
      FfiRuntimes,
      ...runtimeProviders(options.names),
    ];
    return {
      module: FfiModule,
      global: options.isGlobal,
      imports: options.imports ?? [],
      providers,
      exports: [FfiRuntimes, ...options.names.map(getRuntimeToken)],
    };
  }
}
