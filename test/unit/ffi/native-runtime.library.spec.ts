import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { resolveLibrary } from '../../../lib/ffi/native-runtime.library.js';
import { tempDir } from '../../helpers/temp-dir.js';

// lib/ffi/native-runtime.library.ts: how `lib` becomes the file dlopen gets.

const dir = tempDir('herald-lib-');

describe('resolveLibrary', () => {
  const saved = process.env.LD_LIBRARY_PATH;
  afterEach(() => {
    process.env.LD_LIBRARY_PATH = saved;
  });

  it('takes a path as a real path, and leaves a missing one as given (dlopen says why)', () => {
    const real = path.join(dir, 'libreal.so');
    writeFileSync(real, '');
    symlinkSync(real, path.join(dir, 'liblink.so'));
    expect(resolveLibrary(path.join(dir, 'liblink.so'))).toBe(real);
    expect(resolveLibrary(path.join(dir, 'libmissing.so'))).toBe(path.join(dir, 'libmissing.so'));
  });

  it('searches LD_LIBRARY_PATH for a file name or a short name, else leaves it to dlopen', () => {
    const sub = path.join(dir, 'search');
    mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, 'libdemo.so'), '');
    process.env.LD_LIBRARY_PATH = `/nonexistent:${sub}`;
    expect(resolveLibrary('demo')).toBe(path.join(sub, 'libdemo.so'));
    expect(resolveLibrary('libdemo.so')).toBe(path.join(sub, 'libdemo.so'));
    expect(resolveLibrary('other')).toBe('libother.so');
    expect(resolveLibrary('libc.so.6')).toBe('libc.so.6');
  });
});
