import { RequestContexts } from '../../../lib/explorer/request-contexts.js';

describe('RequestContexts', () => {
  it('hands a request over once, by its token', () => {
    const contexts = new RequestContexts();
    const request = {};
    const token = contexts.attach(request);
    expect(contexts.take(token)).toBe(request);
    expect(contexts.take(token)).toBeUndefined();
    expect(contexts.take(undefined)).toBeUndefined();
  });

  it("never finds another instance's token (another process reading the header)", () => {
    const here = new RequestContexts();
    const there = new RequestContexts();
    there.attach({});
    expect(here.take(there.attach({}))).toBeUndefined();
  });

  it('is bounded: the oldest requests no handler took are let go', () => {
    const contexts = new RequestContexts();
    const first = contexts.attach({});
    for (let i = 0; i < 2000; i++) contexts.attach({});
    expect(contexts.size).toBe(1024);
    expect(contexts.take(first)).toBeUndefined();
  });
});
