import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { EventsModule } from '../../lib/index.js';
import { HeraldHealthIndicator } from '../../lib/terminus/index.js';
import { HealthController } from './health.controller.js';

/** Where the sample's events go: a Redis stream. */
export interface HealthSampleOptions {
  readonly redisUrl: string;
  readonly stream: string;
}

/** EventsModule over Redis Streams, and /health reporting on it. */
@Module({})
export class HealthSampleModule {
  static forRoot(options: HealthSampleOptions): DynamicModule {
    return {
      module: HealthSampleModule,
      imports: [
        EventsModule.forRoot({
          transport: 'redis',
          redis: { url: options.redisUrl, stream: options.stream },
        }),
        TerminusModule,
      ],
      controllers: [HealthController],
      providers: [HeraldHealthIndicator],
    };
  }
}
