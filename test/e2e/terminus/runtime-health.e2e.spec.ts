import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { FfiModule, FfiRuntimes } from '../../../lib/ffi/index.js';
import { HeraldHealthIndicator } from '../../../lib/terminus/index.js';
import { uniqueName } from '../../helpers/services.js';
import { fixture } from '../../unit/ffi/ffi-fixtures.js';

describe('HeraldHealthIndicator.isRuntimeHealthy with a real compiled runtime', () => {
  it('is up while the runtime is loaded, down naming it once unloaded or unknown', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        FfiModule.forRoot({
          runtimes: [
            {
              name: 'echo',
              lib: fixture('echo'),
              cfg: `threads=1;${uniqueName('health')}`,
              maxQueue: 8,
            },
          ],
        }),
        TerminusModule,
      ],
      providers: [HeraldHealthIndicator],
    }).compile();
    const indicator = moduleRef.get(HeraldHealthIndicator);
    const runtimes = moduleRef.get(FfiRuntimes);
    await runtimes.get('echo').call('ping');

    expect(indicator.isRuntimeHealthy('ffi')).toEqual({
      ffi: {
        status: 'up',
        runtimes: { echo: { loaded: true, queued: 0, inFlight: 0, maxQueue: 8, refusedFull: 0 } },
      },
    });
    expect(indicator.isRuntimeHealthy('ffi', { names: ['nope'] }).ffi).toMatchObject({
      status: 'down',
      reason: expect.stringContaining('nope: FfiModule: no runtime named "nope"'),
    });
    // Without EventsModule the events check is down and says why.
    expect(indicator.isHealthy('events').events).toEqual({
      status: 'down',
      reason: 'EventsModule is not in this application',
    });

    runtimes.get('echo').close();
    expect(indicator.isRuntimeHealthy('ffi').ffi).toMatchObject({
      status: 'down',
      reason: 'echo: unloaded',
    });
    await moduleRef.close();
  });
});
