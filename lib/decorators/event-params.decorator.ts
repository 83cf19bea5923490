import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { HeraldEvent } from '../interfaces/envelope.interface.js';

/**
 * Injects the event data (or one property of it) into an `@OnEvent` handler
 * parameter; pipes run on it: `@EventData(ParseIntPipe) id: number`,
 * `@EventData('id', ParseIntPipe) id: number`. Once one parameter is
 * decorated, decorate every parameter the handler reads.
 * @publicApi
 */
export const EventData = createParamDecorator(
  (property: string | undefined, ctx: ExecutionContext) => {
    const data: unknown = ctx.getArgByIndex(0);
    if (property === undefined) return data;
    return data !== null && typeof data === 'object'
      ? (data as Record<string, unknown>)[property]
      : undefined;
  },
);

/**
 * Injects the whole {@link HeraldEvent} (id, source, event, key, headers,
 * origin, attempt, local) into an `@OnEvent` handler parameter.
 * @publicApi
 */
export const CurrentEvent = createParamDecorator(
  (_property: unknown, ctx: ExecutionContext): HeraldEvent => ctx.getArgByIndex(1),
);
