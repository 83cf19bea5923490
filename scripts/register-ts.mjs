// Lets plain `node` run the project's TypeScript (samples, benches, worker
// fixtures) with decorator metadata, which Nest's DI needs and tsx/esbuild
// cannot emit. Usage: node --import ./scripts/register-ts.mjs file.ts
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
