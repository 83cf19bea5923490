// Module hooks for scripts/register-ts.mjs: resolve `./x.js` to `./x.ts` when
// only the TypeScript source exists, and compile .ts with swc (ESM output,
// legacy decorators, decorator metadata).
import { readFile, access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import swc from '@swc/core';

const exists = async url => {
  try {
    await access(fileURLToPath(url));
    return true;
  } catch {
    return false;
  }
};

export async function resolve(specifier, context, nextResolve) {
  const relative =
    specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:');
  if (relative && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const url = new URL(specifier, context.parentURL);
    if (!(await exists(url))) {
      const tsUrl = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
      if (await exists(tsUrl)) return { url: tsUrl.href, shortCircuit: true, format: 'module' };
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const filename = fileURLToPath(url);
  const source = await readFile(filename, 'utf8');
  const { code, map } = await swc.transform(source, {
    filename,
    sourceMaps: 'inline',
    module: { type: 'es6' },
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      keepClassNames: true,
    },
  });
  void map;
  return { format: 'module', source: code, shortCircuit: true };
}
