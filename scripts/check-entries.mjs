#!/usr/bin/env node
// Typings per entry point: `node scripts/check-entries.mjs [--tarball file]`
// (run by .ci/run). For each entry point, a tiny consumer app with the packed
// tarball and ONLY that entry's peers installed, compiled with Nest 12's
// default tsconfig and `skipLibCheck: false`: an entry whose typings reach an
// optional peer it does not need (the root reaching pg or ioredis types)
// fails with TS2307. The root app also proves `pg`/`redis` options are
// unknown until their subpath is imported (`@ts-expect-error`), and the pg app
// that importing `nest-herald/pg` adds them.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { compile, freshApp, packedTarball } from './fresh-app.mjs';

const CORE = [
  '@nestjs/common',
  '@nestjs/core',
  'reflect-metadata',
  'rxjs',
  'typescript',
  '@types/node',
];
const OPTIONAL = [
  'pg',
  '@types/pg',
  'ioredis',
  '@nestjs/microservices',
  '@nestjs/terminus',
  '@opentelemetry/api',
];

const apps = [
  {
    label: 'entry-core',
    peers: [],
    files: {
      'root.ts': `import { Module } from '@nestjs/common';
import {
  EventBus,
  EventsModule,
  IpcTransport,
  LocalTransport,
  type TransportSelection,
} from 'nest-herald';

const selection: TransportSelection = { transport: 'ipc', ipc: { workerCount: 2 } };
// @ts-expect-error: without nest-herald/pg the root options know no \`pg\`
const pg: TransportSelection = { transport: 'pg', pg: { channel: 'herald' } };
// @ts-expect-error: without nest-herald/redis the root options know no \`redis\`
const redis: TransportSelection = { transport: 'redis', redis: { stream: 'events' } };

@Module({ imports: [EventsModule.forRoot({ ...selection, concurrency: 2 })] })
export class AppModule {}

export const parts = [new EventBus({ transport: new LocalTransport() }), IpcTransport, pg, redis];
`,
      'ffi.ts': `import { FfiModule, NativeRuntime } from 'nest-herald/ffi';

export const parts = [FfiModule.forRoot({ runtimes: [{ name: 'echo', lib: 'echo' }] }), NativeRuntime.load];
`,
      'testing.ts': `import { LocalTransport } from 'nest-herald';
import { transportConformance, waitFor } from 'nest-herald/testing';

export const run = () =>
  transportConformance({ name: 'local', features: new LocalTransport().features, createTransport: () => new LocalTransport() });
export const wait = waitFor;
`,
    },
  },
  {
    label: 'entry-pg',
    peers: ['pg', '@types/pg'],
    files: {
      'pg.ts': `import { Module } from '@nestjs/common';
import { EventsModule } from 'nest-herald';
import { PgHub } from 'nest-herald/pg';

@Module({ imports: [EventsModule.forRoot({ transport: 'pg', pg: { connectionString: 'postgres://x', channel: 'herald' } })] })
export class AppModule {}

export const hub = new PgHub({ connectionString: 'postgres://x' });
`,
    },
  },
  {
    label: 'entry-pg-microservice',
    peers: ['pg', '@types/pg', '@nestjs/microservices'],
    files: {
      'pg-microservice.ts': `import { PgNotifyClient, PgNotifyServer } from 'nest-herald/pg/microservice';

export const parts = [new PgNotifyServer({ connectionString: 'postgres://x' }), new PgNotifyClient({ connectionString: 'postgres://x' })];
`,
    },
  },
  {
    label: 'entry-redis',
    peers: ['ioredis'],
    files: {
      'redis.ts': `import { Module } from '@nestjs/common';
import { EventsModule } from 'nest-herald';
import { StreamPublisher } from 'nest-herald/redis';

@Module({ imports: [EventsModule.forRoot({ transport: 'redis', redis: { stream: 'events', mode: 'work-queue' } })] })
export class AppModule {}

export const publisher = new StreamPublisher({ stream: 'events' });
`,
    },
  },
  {
    label: 'entry-redis-microservice',
    peers: ['ioredis', '@nestjs/microservices'],
    files: {
      'redis-microservice.ts': `import { RedisStreamsClient, RedisStreamsServer } from 'nest-herald/redis/microservice';

export const parts = [new RedisStreamsServer({ group: 'g' }), new RedisStreamsClient({})];
`,
    },
  },
  {
    label: 'entry-terminus',
    peers: ['@nestjs/terminus'],
    files: {
      'terminus.ts': `import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { EventsModule } from 'nest-herald';
import { HeraldHealthIndicator } from 'nest-herald/terminus';

@Module({ imports: [EventsModule.forRoot({}), TerminusModule], providers: [HeraldHealthIndicator] })
export class AppModule {}
`,
    },
  },
  {
    label: 'entry-otel',
    peers: ['@opentelemetry/api'],
    files: {
      'otel.ts': `import { HERALD_METRICS, enableTelemetry } from 'nest-herald/otel';

export const ready: Promise<boolean> = enableTelemetry({ maxAttributeSets: 100 });
export const posted: string = HERALD_METRICS.posted;
`,
    },
  },
];

const tarball = packedTarball();
const only = process.argv.indexOf('--only'); // `--only entry-core`: one app
const chosen = only >= 0 ? apps.filter(app => app.label === process.argv[only + 1]) : apps;
const failures = [];
for (const { label, peers, files } of chosen) {
  const dir = freshApp(label, [...CORE, ...peers], tarball);
  // An optional peer that is there although not asked for would hide a leak.
  const leaked = OPTIONAL.filter(
    name => !peers.includes(name) && existsSync(path.join(dir, 'node_modules', name)),
  );
  if (leaked.length) failures.push(`${label}: installed without being asked: ${leaked.join(', ')}`);
  const src = path.join(dir, 'src');
  rmSync(src, { recursive: true, force: true });
  mkdirSync(src);
  for (const [name, code] of Object.entries(files)) writeFileSync(path.join(src, name), code);
  const errors = compile(dir, { emit: false });
  if (errors) failures.push(`${label} (peers: ${peers.join(', ') || 'none'}):\n${errors}`);
  else
    console.log(
      `${label}: ${Object.keys(files).join(', ')} compile with peers [${peers.join(', ')}]`,
    );
}
if (failures.length) {
  console.error(failures.join('\n'));
  console.error('check-entries: FAILED');
  process.exit(1);
}
console.log(
  'check-entries: every entry point compiles with only its own peers (skipLibCheck: false)',
);
