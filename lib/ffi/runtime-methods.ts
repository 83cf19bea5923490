import type { NativeCallOptions, NativeRequest, NativeRuntime } from './native-runtime.js';

/** A named call: `runtime.produce(req)` is `runtime.call(req)`; the name is not sent. @publicApi */
export type NativeMethod = (req: NativeRequest, options?: NativeCallOptions) => Promise<Buffer>;

/** A runtime whose every other property name is a call, as the original's `runtime:anyName(req)`. @publicApi */
export type NativeRuntimeWithMethods = NativeRuntime & { readonly [method: string]: NativeMethod };

// Names that must never turn into calls: promise resolution (`then`), Nest's
// lifecycle hooks (Nest probes providers for them), serialisation and
// inspection, and Jest's matcher probe. Symbols never do either.
const NOT_METHODS = new Set([
  'then',
  'catch',
  'finally',
  'constructor',
  'onModuleInit',
  'onApplicationBootstrap',
  'onModuleDestroy',
  'beforeApplicationShutdown',
  'onApplicationShutdown',
  'toJSON',
  'toString',
  'valueOf',
  'inspect',
  'asymmetricMatch',
  '$$typeof',
  'nodeType',
]);

/**
 * Wraps a runtime so that `runtime.anyName(req)` calls it, like the
 * original's `runtime:anyName(req)` sugar: the name only documents intent and
 * is not passed to the runtime. `call`, `close`, `stats` and the other
 * members stay what they are.
 * @publicApi
 */
export function withMethods(runtime: NativeRuntime): NativeRuntimeWithMethods {
  const methods = new Map<string, NativeMethod>();
  return new Proxy(runtime, {
    get(target, property, receiver) {
      if (typeof property === 'symbol' || property in target || NOT_METHODS.has(property)) {
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      let method = methods.get(property);
      if (!method) {
        method = (req, options) => target.call(req, options);
        methods.set(property, method);
      }
      return method;
    },
  }) as NativeRuntimeWithMethods;
}
