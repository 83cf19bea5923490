import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import {
  booleanOption,
  functionOption,
  invalidOption,
  optionsObject,
  stringOption,
} from '../common/options.validation.js';
import { InvalidOptionsError } from '../common/errors.js';
import {
  NATIVE_RUNTIME_OPTION_KEYS,
  resolveNativeRuntimeOptions,
  type NativeRuntimeOptions,
} from './native-runtime.options.js';

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

/** {@link FfiModuleOptions} checked, with `isGlobal` resolved. */
export interface ResolvedFfiModuleOptions {
  runtimes: FfiRuntimeDefinition[];
  isGlobal: boolean;
}

const SCOPE = 'FfiModule';
const DEFINITION_KEYS = [
  'name',
  'lib',
  'methods',
  ...NATIVE_RUNTIME_OPTION_KEYS.filter(key => key !== 'name'),
] as const;

/**
 * `FfiModule.forRoot` options (or the factory's, without `isGlobal`),
 * resolved: throws `InvalidOptionsError` naming the option, the rule and the
 * value with its type; unknown keys refused, at the module and in each
 * runtime. Each runtime's own options (`cfg`, `maxQueue`, ...) are resolved
 * by `NativeRuntime.load` when the module starts.
 */
export function resolveFfiModuleOptions(
  options: FfiModuleOptions | Omit<FfiModuleOptions, 'isGlobal'> | undefined,
  /** false for the factory's result of forRootAsync (isGlobal is given to forRootAsync itself). */
  withIsGlobal = true,
): ResolvedFfiModuleOptions {
  if (options === undefined) invalidOption(SCOPE, 'options', 'an object with runtimes', options);
  const given = optionsObject<FfiModuleOptions>(
    SCOPE,
    options as FfiModuleOptions,
    withIsGlobal ? ['runtimes', 'isGlobal'] : ['runtimes'],
  );
  if (!Array.isArray(given.runtimes)) {
    invalidOption(
      SCOPE,
      'runtimes',
      'an array of { name, lib, cfg?, maxQueue?, ... }',
      given.runtimes,
    );
  }
  const names = new Set<string>();
  given.runtimes.forEach((definition, i) => {
    const scope = `${SCOPE}: runtimes[${i}]`;
    const checked = optionsObject<FfiRuntimeDefinition>(scope, definition, [...DEFINITION_KEYS]);
    const name = stringOption(scope, 'name', checked.name, undefined);
    if (name === undefined) invalidOption(scope, 'name', 'a non-empty string', checked.name);
    if (names.has(name)) invalidOption(scope, 'name', 'unique among the runtimes', name);
    names.add(name);
    booleanOption(scope, 'methods', checked.methods, false);
    // The runtime's own options, checked now rather than when the module starts.
    const { lib, methods: _methods, ...rest } = checked;
    try {
      resolveNativeRuntimeOptions(lib, { ...rest, name });
    } catch (error) {
      if (!(error instanceof InvalidOptionsError)) throw error;
      throw new InvalidOptionsError(`${scope} ("${name}"): ${error.message}`);
    }
  });
  return {
    runtimes: given.runtimes,
    isGlobal: booleanOption(SCOPE, 'isGlobal', given.isGlobal, true),
  };
}

/** `FfiModule.forRootAsync` options resolved (the factory's result is resolved when it runs). */
export function resolveFfiModuleAsyncOptions(
  options: FfiModuleAsyncOptions | undefined,
): FfiModuleAsyncOptions & {
  isGlobal: boolean;
  inject: NonNullable<FfiModuleAsyncOptions['inject']>;
} {
  const scope = 'FfiModule.forRootAsync';
  if (options === undefined) invalidOption(scope, 'options', 'an object', options);
  const given = optionsObject<FfiModuleAsyncOptions>(scope, options, [
    'names',
    'useFactory',
    'inject',
    'imports',
    'isGlobal',
  ]);
  if (!Array.isArray(given.names) || given.names.some(name => typeof name !== 'string' || !name)) {
    invalidOption(scope, 'names', 'an array of non-empty strings', given.names);
  }
  functionOption(scope, 'useFactory', given.useFactory, undefined);
  if (given.useFactory === undefined) invalidOption(scope, 'useFactory', 'a function', undefined);
  if (given.inject !== undefined && !Array.isArray(given.inject))
    invalidOption(scope, 'inject', 'an array', given.inject);
  if (given.imports !== undefined && !Array.isArray(given.imports))
    invalidOption(scope, 'imports', 'an array', given.imports);
  return {
    ...given,
    inject: given.inject ?? [],
    isGlobal: booleanOption(scope, 'isGlobal', given.isGlobal, true),
  };
}
