import { Fifo } from '../../../lib/common/fifo.js';

describe('Fifo', () => {
  it('peeks with at() without removing, shifts in order, drains the rest', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 3000; i++) fifo.push(i);
    for (let i = 0; i < 2000; i++) expect(fifo.shift()).toBe(i);
    expect(fifo.at(0)).toBe(2000);
    expect(fifo.at(999)).toBe(2999);
    expect(fifo.at(1000)).toBeUndefined();
    expect(fifo.at(-1)).toBeUndefined();
    expect(fifo.length).toBe(1000);
    expect(fifo.drain()).toHaveLength(1000);
    expect(fifo.shift()).toBeUndefined();
  });
});
