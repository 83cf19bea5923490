import { packPayloads } from '../../../../lib/transports/pg/pg.packed-payloads.js';

describe('packPayloads', () => {
  it('joins pure ASCII payloads by 0x1e, empty ones included', () => {
    expect(packPayloads(['e:{"a":1}', '', 'e1,-2', ''])?.toString('latin1')).toBe(
      'e:{"a":1}\u001e\u001ee1,-2\u001e',
    );
    expect(packPayloads(['only'])?.toString('latin1')).toBe('only');
  });

  it('refuses (undefined) a payload with the separator or beyond ASCII, wherever it is', () => {
    expect(packPayloads(['a', 'b\u001ec'])).toBeUndefined();
    for (const odd of ['é', '€', '😀', '\ud800', 'x'.repeat(50) + 'ü'])
      for (const at of [0, 1, 2]) {
        const payloads = ['first', 'second', 'third'];
        payloads[at] = odd;
        expect(packPayloads(payloads)).toBeUndefined();
      }
  });
});
