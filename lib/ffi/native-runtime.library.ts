import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';

/**
 * The file `NativeRuntime.load` opens for `lib`, as the original takes it: a path (anything with a `/`), a file name
 * (`libdemo.so`) or a short name (`demo` → `libdemo.so`); names are searched
 * on LD_LIBRARY_PATH as it is now (glibc reads it once at start-up), then
 * left to dlopen's own search. @publicApi
 */
export function resolveLibrary(lib: string): string {
  let candidate: string;
  if (lib.includes('/')) candidate = path.resolve(lib);
  else {
    const file = /\.so(\.\d+)*$/.test(lib) ? lib : `lib${lib}.so`;
    const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
    const found = dirs.map(dir => path.resolve(dir, file)).find(full => existsSync(full));
    if (!found) return file;
    candidate = found;
  }
  return existsSync(candidate) ? realpathSync(candidate) : candidate;
}
