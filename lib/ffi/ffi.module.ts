import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { FFI_MODULE_OPTIONS, getRuntimeToken } from './ffi.constants.js';
import type { FfiModuleAsyncOptions, FfiModuleOptions } from './ffi.options.js';
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
  static forRoot(options: FfiModuleOptions): DynamicModule {
    const names = (options?.runtimes ?? []).map(runtime => runtime.name);
    const providers = [
      { provide: FFI_MODULE_OPTIONS, useValue: options },
      FfiRuntimes,
      ...runtimeProviders(names),
    ];
    return {
      module: FfiModule,
      global: options?.isGlobal ?? true,
      providers,
      exports: [FfiRuntimes, ...names.map(getRuntimeToken)],
    };
  }

  static forRootAsync(options: FfiModuleAsyncOptions): DynamicModule {
    const providers: Provider[] = [
      { provide: FFI_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
      FfiRuntimes,
      ...runtimeProviders(options.names),
    ];
    return {
      module: FfiModule,
      global: options.isGlobal ?? true,
      imports: options.imports ?? [],
      providers,
      exports: [FfiRuntimes, ...options.names.map(getRuntimeToken)],
    };
  }
}
