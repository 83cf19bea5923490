import { Module, type DynamicModule, type INestApplicationContext } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import {
  EventPublisher,
  EventsModule,
  InvalidOptionsError,
  silentLogger,
  type EventsModuleOptions,
} from '../../../lib/index.js';

const start = (imports: DynamicModule[]): Promise<INestApplicationContext> =>
  NestFactory.createApplicationContext(
    { module: class Options {}, imports },
    { logger: false, abortOnError: false },
  );

/** The error the app's start failed with. */
async function startError(imports: DynamicModule[]): Promise<Error> {
  const app = await start(imports).catch((error: unknown) => error as Error);
  if (!(app instanceof Error)) {
    await app.close();
    throw new Error('the app started');
  }
  return app;
}

describe('EventsModule options (e2e)', () => {
  it('refuses a ConfigService string for concurrency, naming the option, the rule, the value and its type', async () => {
    const error = await startError([
      EventsModule.forRootAsync({
        imports: [
          ConfigModule.forRoot({
            ignoreEnvFile: true,
            load: [() => ({ HERALD_CONCURRENCY: '4' })],
          }),
        ],
        inject: [ConfigService],
        useFactory: (config: ConfigService): EventsModuleOptions => ({
          concurrency: config.get('HERALD_CONCURRENCY'),
          logger: silentLogger,
        }),
      }),
    ]);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toBe(
      'EventsModule: concurrency must be an integer >= 1 (got "4", a string)',
    );
  });

  it.each([
    ['wildcard', true],
    ['verboseMemoryLeak', true],
    ['maxListeners', 20],
  ])(
    'refuses the @nestjs/event-emitter option %s, pointing at the migration notes',
    async (key, value) => {
      const options = { [key]: value, logger: silentLogger } as EventsModuleOptions;
      const error = await startError([EventsModule.forRoot(options)]);
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect(error.message).toContain(`unknown option '${key}'`);
      expect(error.message).toContain('Coming from @nestjs/event-emitter');
    },
  );

  it('refuses an unknown key and a wrong-typed value, from forRoot and from a factory', async () => {
    const unknown = await startError([
      EventsModule.forRoot({ concurrencyy: 2, logger: silentLogger } as EventsModuleOptions),
    ]);
    expect(unknown).toBeInstanceOf(InvalidOptionsError);
    expect(unknown.message).toContain("unknown option 'concurrencyy'");
    const wrongType = await startError([
      EventsModule.forRootAsync({
        useFactory: () => ({ shutdownTimeoutMs: '100' as never, logger: silentLogger }),
      }),
    ]);
    expect(wrongType).toBeInstanceOf(InvalidOptionsError);
    expect(wrongType.message).toBe(
      'EventsModule: shutdownTimeoutMs must be a finite number > 0 (got "100", a string)',
    );
    const nested = await startError([
      EventsModule.forRoot({ unique: { ttl: 5 } as never, logger: silentLogger }),
    ]);
    expect(nested.message).toContain("EventsModule: unique: unknown option 'ttl'");
  });

  it('the process lives on after a refused start: a good app starts next', async () => {
    await startError([EventsModule.forRoot({ maxPending: -1, logger: silentLogger })]);
    @Module({ imports: [EventsModule.forRoot({ logger: silentLogger })] })
    class Good {}
    const moduleRef = await Test.createTestingModule({ imports: [Good] }).compile();
    const app = await moduleRef.init();
    try {
      await expect(app.get(EventPublisher).post('still', 'alive')).resolves.toHaveProperty('id');
    } finally {
      await app.close();
    }
  });
});
