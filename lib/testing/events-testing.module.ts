import { Module, type DynamicModule } from '@nestjs/common';
import { EventsModule } from '../events.module.js';
import type { EventsModuleOptions } from '../events-module-options.interface.js';
import { HeraldTestKit } from './herald-test-kit.js';
import { RecordingTransport, type RecordingTransportOptions } from './recording.transport.js';

/** Options of `EventsTestingModule.forRoot`: the module's, but the transport, plus the recorder's. @publicApi */
export type EventsTestingOptions = Omit<EventsModuleOptions, 'transport' | 'ipc' | 'pg' | 'redis'> &
  RecordingTransportOptions;

/**
 * `EventsModule` for tests: the same module, on a {@link RecordingTransport}
 * (this process only, like `transport: 'local'`, recording every post),
 * plus {@link HeraldTestKit} to inject or `app.get()`. Import it in a
 * testing module where the app imports `EventsModule.forRoot(...)`; it is
 * global, as `EventsModule` is by default.
 * @publicApi
 */
@Module({})
export class EventsTestingModule {
  /** Every app built from it gets its own recording transport. */
  static forRoot(options: EventsTestingOptions = {}): DynamicModule {
    const { loopback, ...moduleOptions } = options;
    return {
      module: EventsTestingModule,
      global: true,
      imports: [
        EventsModule.forRootAsync({
          useFactory: (): EventsModuleOptions => ({
            ...moduleOptions,
            transport: new RecordingTransport({ loopback }),
          }),
        }),
      ],
      providers: [HeraldTestKit],
      exports: [HeraldTestKit],
    };
  }
}
