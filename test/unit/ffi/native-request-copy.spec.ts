import { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import { uniqueName } from '../../helpers/services.js';
import { buildNative, fixture } from './ffi-fixtures.js';

// lib/ffi/native/host.cc, CopyRequest: once the requests in flight outgrow
// a core's L2 cache, large requests are copied into their pooled task with
// streaming stores. Each request here is different (a pooled task still holds
// the previous call's bytes), its length not a multiple of the 64-byte blocks
// streamed (the tail is copied as usual), and the runtime must read each one
// whole: the echo answers it back.

let runtime: NativeRuntime;
beforeAll(() => {
  buildNative();
  runtime = NativeRuntime.load(fixture('echo'), { cfg: `threads=2;${uniqueName('copy')}` });
}, 120_000);
afterAll(() => runtime.close());

/** A request of `size` bytes that no other call of the run has. */
function requestOf(call: number, size: number): Buffer {
  const request = Buffer.alloc(size, 0x61 + (call % 26));
  request.writeUInt32LE(call, 0);
  request.writeUInt32LE(call, size - 4);
  return request;
}

describe('FFI host: large requests reach the runtime whole', () => {
  it.each([
    ['1 KiB x 1024 in flight', 1024, 1024],
    ['4 KiB + 13 B x 1024 in flight', 4096 + 13, 1024],
    ['100 KiB x 16 in flight', 102_400, 16],
    ['4 KiB x 64 in flight (copied as usual)', 4096, 64],
  ])(
    '%s: every answer is its own request',
    async (_label, size, inFlight) => {
      const calls = 8 * inFlight;
      let next = 0;
      let wrong = 0;
      const caller = async (): Promise<void> => {
        while (next < calls) {
          const request = requestOf(next++, size);
          const answer = await runtime.call(request);
          if (!answer.equals(request)) wrong++;
        }
      };
      await Promise.all(Array.from({ length: inFlight }, caller));
      expect(wrong).toBe(0);
    },
    120_000,
  );
});
