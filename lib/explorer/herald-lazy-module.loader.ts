import { Injectable, type DynamicModule, type Type } from '@nestjs/common';
import { LazyModuleLoader, type ModuleRef } from '@nestjs/core';
import { EventsExplorer } from './events.explorer.js';

/** What `LazyModuleLoader.load` takes after the loader function. */
type LoadOptions = Parameters<LazyModuleLoader['load']>[1];

/**
 * Nest's `LazyModuleLoader`, plus the `@OnEvent` methods of what it loaded:
 * inject it instead of `LazyModuleLoader` and call `load(() => import(...))`
 * as usual. Nest 12's loader runs no lifecycle hook on a lazily loaded
 * module (and builds its instances in an order a provider of it cannot
 * observe), so handlers are registered here, once `load` resolved: the
 * handlers of every instance not registered yet. Loading a module again
 * registers nothing again.
 * @publicApi
 */
@Injectable()
export class HeraldLazyModuleLoader {
  constructor(
    private readonly loader: LazyModuleLoader,
    private readonly explorer: EventsExplorer,
  ) {}

  /** `LazyModuleLoader.load`, then the new `@OnEvent` methods registered. */
  async load(
    loaderFn: () => Promise<Type<unknown> | DynamicModule> | Type<unknown> | DynamicModule,
    loadOpts?: LoadOptions,
  ): Promise<ModuleRef> {
    const moduleRef = await this.loader.load(loaderFn, loadOpts);
    this.explorer.registerNew();
    return moduleRef;
  }
}
