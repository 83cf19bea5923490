import fc from 'fast-check';
import { StringCache } from '../../../../lib/transports/ipc/ipc.string-cache.js';

describe('StringCache', () => {
  it('decodes any string as toString does, repeated or not, at any offset', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string({ unit: 'grapheme', maxLength: 80 }),
            fc.constantFrom('a', 'b', 'orders'),
          ),
          {
            maxLength: 200,
          },
        ),
        texts => {
          // Few slots, so strings share them and replace each other.
          const cache = new StringCache(4);
          for (const text of texts) {
            const buf = Buffer.concat([Buffer.from('<'), Buffer.from(text), Buffer.from('>')]);
            expect(cache.decode(buf, 1, buf.length - 1)).toBe(text);
          }
        },
      ),
    );
  });

  it('gives back the same string for the same bytes', () => {
    const cache = new StringCache();
    const first = cache.decode(Buffer.from('orders/created'), 0, 14);
    expect(cache.decode(Buffer.from('xorders/created'), 1, 15)).toBe(first);
  });
});
