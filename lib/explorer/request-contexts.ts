import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';

/**
 * The header that carries a post's request to this process's scoped
 * handlers (`inheritRequestContextId`): an opaque token, meaningful only in
 * the process that posted.
 * @publicApi
 */
export const REQUEST_CONTEXT_HEADER = 'herald-request-context';

/** How many posted requests wait for their handlers at most; the oldest go first. */
const CAPACITY = 1024;

/**
 * The requests of posts made with `{ request }`, by token, until a
 * request-scoped handler of that event takes it. A token is this instance's
 * random prefix plus a counter, so a token read in another process (the
 * header travels with `post` on ipc, pg, redis) never finds anything there.
 * Bounded: an event no scoped handler took leaves its request here until
 * {@link CAPACITY} newer ones pushed it out.
 */
@Injectable()
export class RequestContexts {
  private readonly prefix = randomUUID();
  private next = 0;
  private readonly pending = new Map<string, object>();

  /** Keeps `request` for the event being posted; @returns the header value. */
  attach(request: object): string {
    const token = `${this.prefix}:${++this.next}`;
    this.pending.set(token, request);
    if (this.pending.size > CAPACITY) {
      this.pending.delete(this.pending.keys().next().value!);
    }
    return token;
  }

  /** The request posted with this token (once). */
  take(token: string | undefined): object | undefined {
    if (token === undefined) return undefined;
    const request = this.pending.get(token);
    if (request !== undefined) this.pending.delete(token);
    return request;
  }

  get size(): number {
    return this.pending.size;
  }
}
