import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Module } from '@nestjs/common';
import { FfiModule } from '../../lib/ffi/index.js';
import { HashController } from './hash.controller.js';

// The C test runtime with several poll threads (test/fixtures/ffi/gate.c),
// built by `npm ci` / `npm run build:native`.
const lib = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../test/fixtures/ffi/build/libherald_gate.so',
);

@Module({
  imports: [FfiModule.forRoot({ runtimes: [{ name: 'hasher', lib, cfg: 'threads=2' }] })],
  controllers: [HashController],
})
export class AppModule {}
