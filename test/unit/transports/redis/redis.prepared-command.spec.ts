import fc from 'fast-check';
import {
  bulkBound,
  closeBulk,
  openBulk,
  writeBulk,
} from '../../../../lib/transports/redis/redis.prepared-command.js';
import { LENGTHS_ACROSS_POWERS_OF_TEN } from '../../../helpers/utf8-lengths.js';

/** Reads RESP bulk strings back to back, strictly: each `$<length>\r\n<bytes>\r\n`, the length without leading zeros. */
function readBulks(bytes: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    expect(bytes[at]).toBe(0x24);
    const cr = bytes.indexOf(0x0d, at);
    const digits = bytes.toString('latin1', at + 1, cr);
    expect(digits).toMatch(/^(0|[1-9]\d*)$/);
    expect(bytes[cr + 1]).toBe(0x0a);
    const start = cr + 2;
    const end = start + Number(digits);
    expect(bytes.subarray(end, end + 2).toString('latin1')).toBe('\r\n');
    out.push(bytes.toString('utf8', start, end));
    at = end + 2;
  }
  return out;
}

/** The values written one after the other, each through openBulk/closeBulk as the publisher writes them. */
function written(values: readonly string[]): Buffer {
  const data = Buffer.alloc(values.reduce((sum, value) => sum + bulkBound(value.length), 0));
  let at = 0;
  for (const value of values) {
    const start = openBulk(data, at, value.length);
    at = closeBulk(data, at, value.length, start, data.write(value, start));
  }
  return data.subarray(0, at);
}

describe('prepared commands: bulk strings written in place', () => {
  it('frames ASCII values whose length has as many digits as their characters', () => {
    const values = ['', 'a', 'a'.repeat(9), 'a'.repeat(10), 'a'.repeat(99), 'a'.repeat(100)];
    const bytes = written(values);
    expect(readBulks(bytes)).toEqual(values);
    expect(bytes.subarray(0, 13).toString('latin1')).toBe('$0\r\n\r\n$1\r\na\r\n');
  });

  it('moves a value up when its bytes take more digits than its characters (not ASCII, across a power of ten)', () => {
    const values = [...LENGTHS_ACROSS_POWERS_OF_TEN, 'x'];
    expect(readBulks(written(values))).toEqual(values);
  });

  it('writes any string as its UTF-8 bytes, framed exactly (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary', maxLength: 300 }), { maxLength: 8 }),
        values =>
          expect(readBulks(written(values))).toEqual(values.map(v => Buffer.from(v).toString())),
      ),
    );
  });

  it('writeBulk: one value, framed', () => {
    const data = Buffer.alloc(64);
    const end = writeBulk(data, 0, 'naïve');
    expect(data.subarray(0, end).toString()).toBe('$6\r\nnaïve\r\n');
  });
});
