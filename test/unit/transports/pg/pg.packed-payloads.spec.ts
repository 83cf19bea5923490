import {
  packPayloads,
  PgPlainHeadParts,
} from '../../../../lib/transports/pg/pg.packed-payloads.js';

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

  it('writes a payload in parts as head, data, `}`, and refuses odd parts as odd payloads', () => {
    const parts = { head: 'e:{"herald":1,"data":', data: '{"s":"' + 'x'.repeat(4000) + '"}' };
    expect(packPayloads(['e1', parts, parts])?.toString('latin1')).toBe(
      `e1\u001e${parts.head}${parts.data}}\u001e${parts.head}${parts.data}}`,
    );
    expect(packPayloads([parts])?.toString('latin1')).toBe(`${parts.head}${parts.data}}`);
    for (const odd of ['é', '€', '😀', '\ud800', 'x'.repeat(50) + 'ü', 'a\u001eb'])
      for (const at of [0, 1, 2]) {
        const payloads = [parts, { head: 'e:', data: '1' }, 'third'];
        payloads[at] = at === 2 ? odd : { head: at === 0 ? odd : 'e:', data: at === 1 ? odd : '1' };
        expect(packPayloads(payloads)).toBeUndefined();
        payloads[at] = at === 2 ? odd : { head: 'e:', data: odd };
        expect(packPayloads(payloads)).toBeUndefined();
      }
  });

  it("writes the codec's plain-head parts byte for byte as any parts, and still checks their data", () => {
    const head = 'e:{"herald":1,"id":"a-1","source":"s","event":"e","data":';
    const data = '{"s":"' + 'x'.repeat(100) + '"}';
    const plain = new PgPlainHeadParts(head, data);
    expect(
      packPayloads(['e1', plain, plain])?.equals(
        packPayloads(['e1', { head, data }, { head, data }])!,
      ),
    ).toBe(true);
    expect(packPayloads([plain])?.toString('latin1')).toBe(`${head}${data}}`);
    for (const odd of ['é', '😀', 'a\u001eb'])
      expect(packPayloads([plain, new PgPlainHeadParts(head, odd)])).toBeUndefined();
  });
});
