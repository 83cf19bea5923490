import { Inject, Injectable, Optional } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import {
  ContextIdFactory,
  DiscoveryService,
  ExternalContextCreator,
  MetadataScanner,
  ModuleRef,
  type ContextId,
} from '@nestjs/core';
import { Injector } from '@nestjs/core/injector/injector.js';
import { REQUEST_CONTEXT_ID } from '@nestjs/core/router/request/request-constants.js';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import type { EventHandler, HeraldEvent } from '../interfaces/envelope.interface.js';
import type { EventBus } from '../bus/event-bus.js';
import {
  EVENT_BUS,
  EVENT_HANDLER_METADATA,
  EVENTS_MODULE_OPTIONS,
  HERALD_CONTEXT_TYPE,
} from '../events.constants.js';
import type { EventsModuleOptions } from '../events-module-options.interface.js';
import type { OnEventMetadata } from '../decorators/on-event-metadata.interface.js';
import {
  patternsOf,
  resolveHandlerOptions,
  type HandlerEntry,
  type HandlerOptions,
  type HandlerTarget,
  type Pattern,
} from '../bus/event-bus.registry.js';
import { resolvePatternArgs } from '../event-names.js';
import { REQUEST_CONTEXT_HEADER, RequestContexts } from './request-contexts.js';
import { describeError } from '../common/describe-error.js';
import { InvalidOptionsError } from '../common/errors.js';
import { describeValue } from '../common/options.validation.js';

type Invoker = (data: unknown, event: HeraldEvent) => Promise<unknown>;
type Host = Record<string, unknown>;

/**
 * The parts of `ExternalContextCreator` that say which enhancers it would
 * apply (the same calls its `create` makes, globals included).
 */
interface EnhancerLookup {
  getContextModuleKey(moduleCtor: unknown): string;
  guardsContextCreator: { create(...args: unknown[]): unknown[] };
  interceptorsContextCreator: { create(...args: unknown[]): unknown[] };
  pipesContextCreator: { create(...args: unknown[]): unknown[] };
  filtersContextCreator: { create(...args: unknown[]): { filters?: unknown[] } };
}

/** Whether any guard, interceptor, pipe, filter or parameter decorator applies to the method. */
function hasEnhancers(
  creator: ExternalContextCreator,
  instance: Host,
  methodName: string,
): boolean {
  const lookup = creator as unknown as EnhancerLookup;
  const callback = instance[methodName];
  if (
    typeof lookup.getContextModuleKey !== 'function' ||
    !lookup.guardsContextCreator ||
    !lookup.interceptorsContextCreator ||
    !lookup.pipesContextCreator ||
    !lookup.filtersContextCreator
  ) {
    return true; // not the Nest we know: keep the full pipeline
  }
  if (Reflect.getMetadata(ROUTE_ARGS_METADATA, instance.constructor, methodName)) return true;
  const moduleKey = lookup.getContextModuleKey(instance.constructor);
  return (
    lookup.guardsContextCreator.create(instance, callback, moduleKey).length > 0 ||
    lookup.interceptorsContextCreator.create(instance, callback, moduleKey).length > 0 ||
    lookup.pipesContextCreator.create(instance, callback, moduleKey).length > 0 ||
    (lookup.filtersContextCreator.create(instance, callback, moduleKey).filters?.length ?? 0) > 0
  );
}

/** `Class.method`: the name the bus logs a handler's failures under. */
function nameOf(instance: object, methodName: string): string {
  return `${instance.constructor?.name ?? 'anonymous'}.${methodName}`;
}

/**
 * The `@OnEvent` entries of a method: `@OnEvent` writes an array; a custom
 * decorator may write one object under `OnEvent.KEY` (as
 * `SetMetadata(KEY, {...})` does with `@nestjs/event-emitter`). Anything
 * else under the key is refused loudly, naming the method.
 */
function metadataOf(raw: unknown, name: string): OnEventMetadata[] {
  if (raw === undefined) return [];
  const entries: unknown[] = Array.isArray(raw) ? raw : [raw];
  return entries.map(entry => {
    const { source, events, options } = (entry ?? {}) as {
      source?: unknown;
      events?: unknown;
      options?: unknown;
    };
    const list = events === undefined ? [] : events;
    if (
      entry === null ||
      typeof entry !== 'object' ||
      !Array.isArray(list) ||
      (source !== undefined && typeof source !== 'string')
    ) {
      throw new InvalidOptionsError(
        `@OnEvent metadata on ${name} must be { source?: string, events?: string[] } (got ${describeValue(entry)})`,
      );
    }
    try {
      patternsOf(source, list as string[]);
    } catch (error) {
      throw new InvalidOptionsError(`@OnEvent metadata on ${name}: ${describeError(error)}`);
    }
    const resolved =
      options === undefined ? undefined : resolveHandlerOptions(`@OnEvent on ${name}`, options);
    return { source, events: list as string[], options: resolved };
  });
}

/** The options of a method's first registration: prepend if any entry says so, the first timeout. */
function mergedOptions(metadata: readonly OnEventMetadata[]): HandlerOptions | undefined {
  let merged: HandlerOptions | undefined;
  for (const { options } of metadata) {
    if (!options) continue;
    merged = {
      prepend: merged?.prepend === true || options.prepend === true,
      timeoutMs: merged?.timeoutMs ?? options.timeoutMs,
    };
  }
  if (merged?.timeoutMs === undefined) delete merged?.timeoutMs;
  return merged;
}

/** Whether `value` carries a Nest DI context id (an HTTP request, or a payload given one). */
function carriesContextId(value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false;
  const host = value as Record<symbol | string, unknown>;
  return (
    host[REQUEST_CONTEXT_ID] !== undefined ||
    (host.raw !== null &&
      typeof host.raw === 'object' &&
      (host.raw as Record<symbol, unknown>)[REQUEST_CONTEXT_ID] !== undefined)
  );
}

/**
 * Only custom parameter decorators (`@EventData()`, `@CurrentEvent()`, and
 * the user's own `createParamDecorator`s) mean something on an event
 * handler; Nest's HTTP ones (`@Body()`...) receive undefined.
 */
const paramsFactory = { exchangeKeyForValue: (): undefined => undefined };

/**
 * Finds `@OnEvent` methods on providers and controllers and registers them
 * on the app's bus, each wrapped by Nest's `ExternalContextCreator` so the
 * guards, interceptors, pipes and filters bound to the method or its class
 * (and the global ones) run around it, with context type `'herald'`.
 */
@Injectable()
export class EventsExplorer {
  private readonly injector = new Injector();
  /** One DI context per event, shared by every scoped handler of that event. */
  private readonly contexts = new WeakMap<HeraldEvent, ContextId>();
  /** What {@link registerAll} registered (the registry's entries, not disposer closures: 10,000 stay small). */
  private registered: HandlerEntry[] = [];
  /** Instances whose methods were looked at, so a later scan (a lazy module) registers only new ones. */
  private readonly seen = new WeakSet<object>();
  private readonly delimiter?: string;
  private readonly inheritRequestContextId: boolean;
  private bootstrapped = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly contextCreator: ExternalContextCreator,
    private readonly moduleRef: ModuleRef,
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Optional() @Inject(EVENTS_MODULE_OPTIONS) options?: EventsModuleOptions,
    @Optional() private readonly requests?: RequestContexts,
  ) {
    // Checked already: the bus is built from the same options before this.
    this.delimiter = options?.delimiter;
    this.inheritRequestContextId = options?.inheritRequestContextId === true;
  }

  /**
   * Registers every `@OnEvent` method once (at bootstrap); @returns how many
   * methods were registered. Throws `InvalidOptionsError` naming
   * `Class.method` for a pattern that can never match.
   */
  registerAll(): number {
    this.bootstrapped = true;
    return this.registerNew();
  }

  /**
   * Registers the `@OnEvent` methods of instances not seen yet (a module
   * loaded lazily since); before bootstrap, nothing (bootstrap does it all).
   * @returns how many methods were registered.
   */
  registerNew(): number {
    if (!this.bootstrapped) return 0;
    let count = 0;
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // An alias (`useExisting`) points at a wrapper registered on its own.
      if (wrapper.isAlias) continue;
      const isStatic = wrapper.isDependencyTreeStatic();
      for (const instance of this.instancesOf(wrapper, isStatic)) {
        // A value provided under two tokens is one object: register its methods once.
        if (this.seen.has(instance)) continue;
        this.seen.add(instance);
        count += this.registerInstance(wrapper, instance, isStatic);
      }
    }
    return count;
  }

  /**
   * The objects whose methods are registered: the instance; for a scoped
   * provider its placeholder (resolved per event); for a transient one each
   * instance Nest built for a consumer (its static instance is an empty
   * placeholder, never constructed).
   */
  private instancesOf(wrapper: InstanceWrapper, isStatic: boolean): object[] {
    if (wrapper.isTransient && isStatic) {
      return wrapper
        .getStaticTransientInstances()
        .map(perContext => perContext?.instance as unknown)
        .filter(
          (instance): instance is object => instance !== null && typeof instance === 'object',
        );
    }
    const instance: unknown = wrapper.instance;
    return instance !== null && typeof instance === 'object' ? [instance] : [];
  }

  private registerInstance(wrapper: InstanceWrapper, instance: object, isStatic: boolean): number {
    const prototype: unknown = Object.getPrototypeOf(instance);
    if (prototype === null || typeof prototype !== 'object') return 0;
    let count = 0;
    let creator: ExternalContextCreator | undefined;
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method: unknown = (prototype as Host)[methodName];
      if (typeof method !== 'function') continue;
      const raw: unknown = Reflect.getMetadata(EVENT_HANDLER_METADATA, method);
      if (raw === undefined) continue;
      const where = nameOf(instance, methodName);
      const metadata = metadataOf(raw, where);
      if (metadata.length === 0) continue;
      // Every pattern checked before any is registered: a bad one fails the bootstrap.
      const patterns: Pattern[] = [];
      for (const { source, events } of metadata) {
        for (const args of resolvePatternArgs(
          `@OnEvent on ${where}`,
          source,
          events,
          this.delimiter,
        )) {
          for (const pattern of patternsOf(args.source, args.events)) patterns.push(pattern);
        }
      }
      creator ??= this.creatorFor(wrapper);
      const target = this.targetOf(creator, wrapper, instance as Host, methodName, isStatic);
      // One entry under every pattern: the registry runs it once per event.
      this.registered.push(this.bus.registerEntry(target, patterns, mergedOptions(metadata)));
      count++;
    }
    return count;
  }

  /**
   * What the bus calls for a method: the method itself on its instance
   * when nothing runs around it (no closure, and a synchronous handler
   * stays synchronous: the enhancer pipeline costs a promise chain and
   * several microseconds per event); else a function running the
   * enhancers or resolving a scoped instance per event.
   */
  private targetOf(
    creator: ExternalContextCreator,
    wrapper: InstanceWrapper,
    instance: Host,
    methodName: string,
    isStatic: boolean,
  ): HandlerTarget {
    if (isStatic && !hasEnhancers(creator, instance, methodName)) {
      const method = instance[methodName];
      if (typeof method === 'function') {
        return { handler: method as EventHandler, receiver: instance, key: methodName };
      }
    }
    // With schemas, the bus validates each event before the method runs.
    const handler: EventHandler = isStatic
      ? this.staticHandler(creator, instance, methodName)
      : this.scopedHandler(creator, wrapper, instance, methodName);
    return { handler, name: nameOf(instance, methodName) };
  }

  /** Removes every registration made by {@link registerAll}. */
  unregisterAll(): void {
    for (const entry of this.registered) this.bus.unregisterEntry(entry);
    this.registered = [];
  }

  /**
   * `ExternalContextCreator` finds the module whose enhancers apply by
   * looking the host up among module providers only; a controller's module
   * is known here, so it is handed over for controllers.
   */
  private creatorFor(wrapper: InstanceWrapper): ExternalContextCreator {
    const host = wrapper.host;
    if (!host || !host.controllers.has(wrapper.token)) return this.contextCreator;
    const moduleKey = host.token;
    return Object.create(this.contextCreator, {
      getContextModuleKey: { value: (): string => moduleKey },
    }) as ExternalContextCreator;
  }

  private staticHandler(
    creator: ExternalContextCreator,
    instance: Host,
    methodName: string,
  ): EventHandler {
    if (!hasEnhancers(creator, instance, methodName)) {
      // Nothing to run around the method (validation wraps it): call it as it is.
      const method = instance[methodName] as (data: unknown, event: HeraldEvent) => unknown;
      return (data: unknown, event: HeraldEvent) => method.call(instance, data, event);
    }
    const invoke = this.invoker(creator, instance, methodName);
    return (data: unknown, event: HeraldEvent) => invoke(data, event);
  }

  /**
   * Request-scoped and durable providers: the instance is resolved per event
   * in a DI context whose `REQUEST` (`EVENT_PAYLOAD`) is the event, the way
   * `@nestjs/event-emitter` does it; a `ContextIdStrategy` sees the event.
   */
  private scopedHandler(
    creator: ExternalContextCreator,
    wrapper: InstanceWrapper,
    placeholder: Host,
    methodName: string,
  ): EventHandler {
    const host = wrapper.host;
    if (!host) throw new Error(`provider ${String(wrapper.name)} has no host module`);
    const collection = host.controllers.has(wrapper.token) ? host.controllers : host.providers;
    const name = nameOf(placeholder, methodName);
    return {
      [name]: async (data: unknown, event: HeraldEvent) => {
        const contextId = this.contextOf(event);
        const instance = (await this.injector.loadPerContext(
          placeholder,
          host,
          collection,
          contextId,
          wrapper,
        )) as Host;
        return this.invoker(creator, instance, methodName, contextId, wrapper.id)(data, event);
      },
    }[name];
  }

  private contextOf(event: HeraldEvent): ContextId {
    let contextId = this.contexts.get(event);
    if (!contextId) {
      const request = this.inheritRequestContextId ? this.requestOf(event) : undefined;
      contextId = request ? this.contextOfRequest(request) : ContextIdFactory.getByRequest(event);
      if (!request) this.moduleRef.registerRequestByContextId(event, contextId);
      this.contexts.set(event, contextId);
    }
    return contextId;
  }

  /** The request an event was posted from: `{ request }` (by header), or `postLocal` data carrying a context id. */
  private requestOf(event: HeraldEvent): object | undefined {
    const token = event.headers[REQUEST_CONTEXT_HEADER];
    const posted = token === undefined ? undefined : this.requests?.take(token);
    if (posted) return posted;
    return event.local && carriesContextId(event.data) ? event.data : undefined;
  }

  /**
   * The request's own DI context, as Nest's router makes it: the context id
   * stored on the request, or a new one stored there (so every event of
   * that request shares it), with the request as its `REQUEST`.
   */
  private contextOfRequest(request: object): ContextId {
    const contextId = ContextIdFactory.getByRequest(request);
    if ((request as Record<symbol, unknown>)[REQUEST_CONTEXT_ID] === undefined) {
      Object.defineProperty(request, REQUEST_CONTEXT_ID, { value: contextId });
      this.moduleRef.registerRequestByContextId(request, contextId);
    }
    return contextId;
  }

  private invoker(
    creator: ExternalContextCreator,
    instance: Host,
    methodName: string,
    contextId?: ContextId,
    inquirerId?: string,
  ): Invoker {
    const callback = instance[methodName] as (...args: unknown[]) => unknown;
    return creator.create(
      instance,
      callback,
      methodName,
      ROUTE_ARGS_METADATA,
      paramsFactory,
      contextId,
      inquirerId,
      undefined,
      HERALD_CONTEXT_TYPE,
    );
  }
}
