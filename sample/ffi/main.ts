// A Nest controller answering HTTP requests through a native runtime:
//   node --import ./scripts/register-ts.mjs sample/ffi/main.ts [--serve]
// @nestjs/platform-express is not a dependency of this package, so a plain
// node:http server routes GET /hash/:data to the controller method. Without
// --serve it asks itself a few questions and exits.
import 'reflect-metadata';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { HashController } from './hash.controller.js';

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule);
  // SIGTERM/SIGINT run app.close(): the runtime is unloaded.
  app.enableShutdownHooks();
  const logger = new Logger('sample/ffi');
  const controller = app.get(HashController);

  const server = http.createServer((request, response) => {
    const match = /^\/hash\/([^/]+)$/.exec(request.url ?? '');
    if (request.method !== 'GET' || !match) {
      response.writeHead(404).end();
      return;
    }
    controller.hash(decodeURIComponent(match[1])).then(
      body =>
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      (error: Error) => response.writeHead(500).end(error.message),
    );
  });
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  logger.log(`listening on http://127.0.0.1:${port}/hash/:data`);
  if (process.argv.includes('--serve')) return;

  const answers = await Promise.all(
    ['alpha', 'beta', 'gamma'].map(async data =>
      (await fetch(`http://127.0.0.1:${port}/hash/${data}`)).json(),
    ),
  );
  for (const answer of answers) logger.log(JSON.stringify(answer));
  server.close();
  await app.close();
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
