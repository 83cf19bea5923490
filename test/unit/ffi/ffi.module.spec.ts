import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { FfiStartupError, RuntimeUnloadedError } from '../../../lib/ffi/ffi.errors.js';
import { FfiModule } from '../../../lib/ffi/ffi.module.js';
import { FfiRuntimes } from '../../../lib/ffi/ffi-runtimes.service.js';
import { InjectRuntime } from '../../../lib/ffi/inject-runtime.decorator.js';
import type { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import type { NativeRuntimeWithMethods } from '../../../lib/ffi/runtime-methods.js';
import { getRuntimeToken } from '../../../lib/ffi/ffi.constants.js';
import { uniqueName } from '../../helpers/services.js';
import { buildNative, fixture } from './ffi-fixtures.js';

@Injectable()
class EchoService {
  constructor(@InjectRuntime('echo') readonly echo: NativeRuntime) {}

  async shout(text: string): Promise<string> {
    return (await this.echo.call(text.toUpperCase())).toString();
  }
}

@Module({ providers: [EchoService], exports: [EchoService] })
class FeatureModule {}

beforeAll(() => buildNative(), 120_000);

describe('FfiModule', () => {
  it('injects a runtime by name into a feature module and unloads it at shutdown', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        FfiModule.forRoot({
          runtimes: [
            { name: 'echo', lib: fixture('echo'), cfg: `threads=1;${uniqueName('nest')}` },
          ],
        }),
        FeatureModule,
      ],
    }).compile();
    const app = await moduleRef.init();
    const service = app.get(EchoService);
    expect(await service.shout('hello')).toBe('HELLO');
    expect(app.get(FfiRuntimes).names()).toEqual(['echo']);
    await app.close();
    expect(service.echo.closed).toBe(true);
    await expect(service.echo.call('after shutdown')).rejects.toBeInstanceOf(RuntimeUnloadedError);
  });

  it('forRootAsync builds the options with a factory', async () => {
    const cfg = `threads=1;${uniqueName('async')}`;
    const moduleRef = await Test.createTestingModule({
      imports: [
        FfiModule.forRootAsync({
          names: ['echo'],
          useFactory: async () => ({
            runtimes: [{ name: 'echo', lib: fixture('echo'), cfg, maxQueue: 8, pollerSpinUs: 0 }],
          }),
        }),
        FeatureModule,
      ],
    }).compile();
    await moduleRef.init();
    const service = moduleRef.get(EchoService);
    expect(await service.shout('async')).toBe('ASYNC');
    expect(service.echo.stats()).toMatchObject({ maxQueue: 8, pollerSpinUs: 0 });
    await moduleRef.close();
    expect(service.echo.closed).toBe(true);
  });

  it('fails start-up with one clear message for a missing library', async () => {
    const compiling = Test.createTestingModule({
      imports: [
        FfiModule.forRoot({ runtimes: [{ name: 'ghost', lib: '/nonexistent/libghost.so' }] }),
      ],
    }).compile();
    await expect(compiling).rejects.toBeInstanceOf(FfiStartupError);
    await expect(
      Test.createTestingModule({
        imports: [
          FfiModule.forRoot({ runtimes: [{ name: 'ghost', lib: '/nonexistent/libghost.so' }] }),
        ],
      }).compile(),
    ).rejects.toThrow(
      /runtime "ghost" cannot start: cannot load native runtime library "\/nonexistent\/libghost.so"/,
    );
  });

  it('fails start-up for a failing init and unloads the runtimes it had loaded', async () => {
    const okCfg = `threads=1;${uniqueName('first')}`;
    const error = await Test.createTestingModule({
      imports: [
        FfiModule.forRoot({
          runtimes: [
            { name: 'first', lib: fixture('echo'), cfg: okCfg },
            { name: 'broken', lib: fixture('cases'), cfg: 'fail=3' },
          ],
        }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FfiStartupError);
    expect((error as Error).message).toMatch(/runtime "broken" cannot start: .* init returned 3/);
    // "first" was unloaded when start-up failed: it cannot be initialised again.
    const retry = await Test.createTestingModule({
      imports: [
        FfiModule.forRoot({ runtimes: [{ name: 'first', lib: fixture('echo'), cfg: okCfg }] }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    expect((retry as Error).message).toMatch(/cannot be initialised again/);
  });

  it('injects a runtime with methods when asked', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        FfiModule.forRoot({
          runtimes: [
            {
              name: 'echo',
              lib: fixture('echo'),
              cfg: `threads=1;${uniqueName('sugar')}`,
              methods: true,
            },
          ],
        }),
      ],
    }).compile();
    const app = await moduleRef.init();
    const runtime = app.get<NativeRuntimeWithMethods>(getRuntimeToken('echo'));
    expect((await runtime.anything('named')).toString()).toBe('named');
    await app.close();
    expect(runtime.closed).toBe(true);
  });

  it('names an unknown runtime for a factory that does not define it', async () => {
    const error = await Test.createTestingModule({
      imports: [
        FfiModule.forRootAsync({ names: ['missing'], useFactory: () => ({ runtimes: [] }) }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/no runtime named "missing"/);
  });
});
