import type { Codec } from '../interfaces/codec.interface.js';
import { SerializationError } from './errors.js';
import { isError } from './describe-error.js';

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** The keys from the root to the value being checked; formatted only on error. */
type Path = (string | number)[];

function format(path: Path): string {
  let out = 'data';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
  }
  return out;
}

function refusal(path: Path, reason: string): SerializationError {
  return new SerializationError(format(path), reason);
}

/** Values whose JSON form silently loses what they hold. */
function refusedObject(value: object): string | undefined {
  if (ArrayBuffer.isView(value))
    return `${value.constructor.name} (encode binary yourself, e.g. base64)`;
  if (value instanceof ArrayBuffer) return 'ArrayBuffer (encode binary yourself, e.g. base64)';
  if (value instanceof Map) return 'Map (JSON writes {})';
  if (value instanceof Set) return 'Set (JSON writes {})';
  if (value instanceof WeakMap || value instanceof WeakSet) return `${value.constructor.name}`;
  if (value instanceof RegExp) return 'RegExp (JSON writes {})';
  if (isError(value)) return 'Error (JSON writes {}); send its message instead';
  if (value instanceof Promise) return 'Promise (await it first)';
  return undefined;
}

/**
 * Walks `value` the way JSON.stringify would and throws at the first value
 * JSON would silently change or drop. `ancestors` holds the objects on the
 * current path: a shared (non-cyclic) reference is fine, a cycle is not.
 */
function check(value: unknown, path: Path, ancestors: object[], inArray: boolean): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw refusal(path, `${value} (JSON writes null)`);
      return;
    case 'undefined':
      if (inArray) throw refusal(path, 'undefined in an array (JSON writes null)');
      return;
    case 'bigint':
      throw refusal(path, 'BigInt (only the event key may hold int64 values)');
    case 'function':
      throw refusal(path, 'function');
    case 'symbol':
      throw refusal(path, 'symbol');
  }
  if (value === null) return;
  const object = value as object;
  // Boxed primitives: JSON writes their primitive, so judge that.
  if (object instanceof Number || object instanceof String || object instanceof Boolean) {
    check(object.valueOf(), path, ancestors, inArray);
    return;
  }
  if (object instanceof BigInt)
    throw refusal(path, 'BigInt (only the event key may hold int64 values)');
  if (object instanceof Symbol) throw refusal(path, 'symbol');
  const refused = refusedObject(object);
  if (refused) throw refusal(path, refused);
  const toJSON = (object as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    if (object instanceof Date) {
      if (Number.isNaN(object.getTime())) throw refusal(path, 'invalid Date');
      return;
    }
    check((toJSON as (key: string) => unknown).call(object, ''), path, ancestors, inArray);
    return;
  }
  if (ancestors.includes(object)) throw refusal(path, 'circular reference');
  ancestors.push(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) {
      path.push(i);
      if (!(i in object)) throw refusal(path, 'array hole (JSON writes null)');
      check(object[i], path, ancestors, true);
      path.pop();
    }
  } else {
    for (const key of Object.keys(object)) {
      path.push(key);
      check((object as Record<string, unknown>)[key], path, ancestors, false);
      path.pop();
    }
  }
  ancestors.pop();
}

const NOTHING: object = Object.freeze(Object.create(Object.prototype) as object);

/** True when someone wrote an enumerable key onto Object.prototype (for-in would yield it). */
function prototypeWritten(): boolean {
  for (const _ in NOTHING) return true;
  return false;
}

/** Deeper than this, the lean walk hands over to {@link check} (which finds cycles). */
const LEAN_DEPTH = 32;

/**
 * The common case in one cheap pass: plain objects and arrays of strings,
 * finite numbers, booleans and null, walked with no allocation (no path, no
 * ancestor list). Anything else (a class instance, a Date, a boxed value,
 * undefined in an array, a value JSON would change, an object with a
 * `toJSON`, a nesting deeper than {@link LEAN_DEPTH}, which may be a cycle)
 * answers false, and the caller runs the full {@link check}, which accepts
 * what JSON keeps and names the path of what it refuses. True means
 * JSON.stringify writes exactly this value.
 *
 * Written for V8's optimizing compiler (issue 24: the walk was about 4% of
 * a local `post`): each type test is `typeof x === '...'`, a type check in
 * the compiled code (a `switch` on `typeof` calls a builtin per value);
 * leaves are judged in the loop, so only nested objects cost a call.
 */
function plain(value: unknown): boolean {
  if (typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object') return false;
  return value === null || plainObject(value, 0);
}

/** {@link plain} for an object (not null). */
function plainObject(value: object, depth: number): boolean {
  if (depth === LEAN_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'string' || typeof item === 'boolean') continue;
      if (typeof item === 'number') {
        if (Number.isFinite(item)) continue;
        return false;
      }
      // undefined (or a hole) in an array: JSON writes null; check() says so.
      if (typeof item !== 'object' || (item !== null && !plainObject(item, depth + 1))) {
        return false;
      }
    }
    return true;
  }
  // A toJSON anywhere on the object or its prototypes (even one not
  // enumerable): JSON calls it, so check() judges. Read before the
  // prototype: V8 then knows the object's shape, and getPrototypeOf
  // compiles to a constant instead of a call into the runtime.
  if ((value as { toJSON?: unknown }).toJSON !== undefined) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  const record = value as Record<string, unknown>;
  // for-in is Object.keys without the array: on a plain object it yields own
  // keys only, since encode() made sure Object.prototype holds no enumerable
  // key (else check() judges, own keys only, as JSON does).
  for (const key in record) {
    const item = record[key];
    // An undefined property is dropped by JSON, as it should be.
    if (typeof item === 'string' || typeof item === 'boolean' || item === undefined) continue;
    if (typeof item === 'number') {
      if (Number.isFinite(item)) continue;
      return false;
    }
    if (typeof item !== 'object' || (item !== null && !plainObject(item, depth + 1))) {
      return false;
    }
  }
  return true;
}

/**
 * The strict JSON codec: refuses, with a {@link SerializationError} naming
 * the path, what JSON would silently change or drop (BigInt, functions,
 * symbols, cycles, NaN/Infinity, Map, Set, typed arrays, Buffers, holes).
 * Dates become ISO strings. `undefined` data encodes as `''`.
 * @publicApi
 */
export class JsonCodec implements Codec {
  encode(data: unknown): string {
    if (data === undefined) return '';
    // Most data is plain: one allocation-free walk, then JSON's own writer.
    if (prototypeWritten() || !plain(data)) check(data, [], [], false);
    return JSON.stringify(data);
  }

  decode(payload: string): unknown {
    return payload === '' ? undefined : JSON.parse(payload);
  }
}

/** The default codec instance. @publicApi */
export const jsonCodec: Codec = new JsonCodec();
