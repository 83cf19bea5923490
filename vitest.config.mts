// Vitest (Nest 12's default runner) for the one spec that proves
// nest-herald/testing works outside Jest: test/vitest/*.vitest.ts, run by
// test/e2e/nest/vitest.e2e.spec.ts. Nest's DI needs decorator metadata, which
// Vite's own transform does not emit, so TypeScript goes through swc here
// (as Nest's docs do with unplugin-swc).
import { transform } from '@swc/core';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  oxc: false,
  plugins: [
    {
      name: 'swc-decorators',
      enforce: 'pre',
      async transform(code: string, id: string) {
        if (!id.endsWith('.ts') || id.includes('/node_modules/')) return null;
        const output = await transform(code, {
          filename: id,
          sourceMaps: true,
          jsc: {
            target: 'es2022',
            parser: { syntax: 'typescript', decorators: true },
            transform: {
              legacyDecorator: true,
              decoratorMetadata: true,
              useDefineForClassFields: false,
            },
            keepClassNames: true,
          },
          module: { type: 'es6' },
        });
        return { code: output.code, map: output.map };
      },
    },
  ],
  test: {
    include: ['test/vitest/**/*.vitest.ts'],
    setupFiles: ['reflect-metadata'],
    pool: 'forks',
    maxWorkers: 1,
  },
});
