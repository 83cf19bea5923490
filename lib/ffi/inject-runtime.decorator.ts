import { Inject } from '@nestjs/common';
import { getRuntimeToken } from './ffi.constants.js';

/**
 * Injects the runtime named `name` by `FfiModule.forRoot({ runtimes })`:
 * `constructor(@InjectRuntime('echo') private readonly echo: NativeRuntime) {}`
 * @publicApi
 */
export const InjectRuntime = (name: string): PropertyDecorator & ParameterDecorator =>
  Inject(getRuntimeToken(name));
