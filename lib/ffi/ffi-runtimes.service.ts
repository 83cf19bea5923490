import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { InvalidOptionsError } from '../common/errors.js';
import { resolveFfiModuleOptions } from './ffi.options.js';
import { FFI_MODULE_OPTIONS } from './ffi.constants.js';
import { FfiStartupError } from './ffi.errors.js';
import type { FfiModuleOptions } from './ffi.options.js';
import { NativeRuntime } from './native-runtime.js';
import { withMethods } from './runtime-methods.js';

/**
 * The runtimes of `FfiModule`, loaded when the module is instantiated (so a
 * missing library or a failing init stops start-up with one clear message)
 * and unloaded at application shutdown. Inject it to reach a runtime by a
 * name known only at run time. @publicApi
 */
@Injectable()
export class FfiRuntimes implements OnApplicationShutdown {
  private readonly runtimes = new Map<string, NativeRuntime>();

  constructor(@Inject(FFI_MODULE_OPTIONS) options: Omit<FfiModuleOptions, 'isGlobal'>) {
    // The factory's result of forRootAsync is checked here; forRoot's again (cheap).
    const { runtimes } = resolveFfiModuleOptions(options, false);
    try {
      for (const definition of runtimes) {
        const { name, lib, methods, ...rest } = definition;
        try {
          const runtime = NativeRuntime.load(lib, { ...rest, name });
          this.runtimes.set(name, methods ? withMethods(runtime) : runtime);
        } catch (error) {
          throw new FfiStartupError(
            `FfiModule: runtime "${name}" cannot start: ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        }
      }
    } catch (error) {
      this.closeAll();
      throw error;
    }
  }

  /** The runtime named `name`; throws `InvalidOptionsError` for an unknown name. */
  get(name: string): NativeRuntime {
    const runtime = this.runtimes.get(name);
    if (!runtime) {
      throw new InvalidOptionsError(
        `FfiModule: no runtime named "${name}" (defined: ${[...this.runtimes.keys()].join(', ') || 'none'})`,
      );
    }
    return runtime;
  }

  /** The names of the loaded runtimes. */
  names(): string[] {
    return [...this.runtimes.keys()];
  }

  onApplicationShutdown(): void {
    this.closeAll();
  }

  private closeAll(): void {
    for (const runtime of this.runtimes.values()) runtime.close();
  }
}
