import { Controller, Get, Param } from '@nestjs/common';
import { InjectRuntime, NativeRuntime } from '../../lib/ffi/index.js';

/** Answers GET /hash/:data through a native runtime: the event loop never waits for the hashing. */
@Controller('hash')
export class HashController {
  constructor(@InjectRuntime('hasher') private readonly hasher: NativeRuntime) {}

  @Get(':data')
  async hash(@Param('data') data: string): Promise<{ data: string; fnv1a: string }> {
    const answer = await this.hasher.call(`hash:100000:${data}`, { timeoutMs: 5000 });
    return { data, fnv1a: answer.toString() };
  }
}
