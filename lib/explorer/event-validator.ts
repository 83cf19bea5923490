import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { logLine } from '../common/log-line.js';
import { WarningLimiter } from '../common/warning-limiter.js';
import { InvalidEventError } from '../common/errors.js';
import { invalidOption } from '../common/options.validation.js';
import { EVENTS_MODULE_OPTIONS } from '../events.constants.js';
import type { EventsModuleOptions } from '../events-module-options.interface.js';
import type { EventHandler, HeraldEvent } from '../interfaces/envelope.interface.js';
import type {
  EventSchemas,
  StandardSchemaIssue,
  StandardSchemaResult,
  StandardSchemaV1,
} from '../interfaces/standard-schema.interface.js';

/**
 * Data that its event's schema refused: `path` names the first offending
 * value (`data.items[0].id`); `issues` are the schema's, every one. Never
 * carries the data itself. @publicApi
 */
export class EventValidationError extends InvalidEventError {
  readonly path: string;
  /**
   * `withMessages: false` (events arriving, whose errors the bus logs) keeps
   * the schema's messages, which may quote the data, out of the message:
   * only the paths; `issues` still has everything.
   */
  constructor(
    readonly source: string,
    readonly event: string,
    readonly issues: readonly StandardSchemaIssue[],
    withMessages = true,
  ) {
    const described = issues.map(issue =>
      withMessages ? `${pathOf(issue)}: ${issue.message}` : pathOf(issue),
    );
    super(
      withMessages
        ? `${source}/${event} data is invalid: ${described.join('; ')}`
        : `${source}/${event} data is invalid at ${described.join(', ')} (messages in error.issues)`,
    );
    this.path = issues.length > 0 ? pathOf(issues[0]) : 'data';
  }
}

function pathOf(issue: StandardSchemaIssue): string {
  let path = 'data';
  for (const segment of issue.path ?? []) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    path +=
      typeof key === 'number'
        ? `[${key}]`
        : typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)
          ? `.${key}`
          : `[${JSON.stringify(String(key))}]`;
  }
  return path;
}

/** `schemas` as given to `forRoot`, checked: an object of objects of Standard Schemas. */
export function resolveSchemas(scope: string, value: unknown): EventSchemas | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    invalidOption(scope, 'schemas', '{ [source]: { [event]: a Standard Schema } }', value);
  }
  for (const [source, events] of Object.entries(value)) {
    if (events === null || typeof events !== 'object' || Array.isArray(events)) {
      invalidOption(scope, `schemas.${source}`, '{ [event]: a Standard Schema }', events);
    }
    for (const [event, schema] of Object.entries(events as object)) {
      const standard = (schema as Partial<StandardSchemaV1> | null)?.['~standard'];
      if (typeof standard?.validate !== 'function') {
        invalidOption(
          scope,
          `schemas.${source}.${event}`,
          'a Standard Schema (zod, valibot, arktype...: an object with ~standard.validate)',
          schema,
        );
      }
    }
  }
  return value as EventSchemas;
}

/**
 * Validation at the boundary, by the events' Standard Schemas (module
 * option `schemas`): `post` validates before anything is sent; every event
 * is validated once before its handlers run (what arrived from another
 * process, and this process's own), and the handlers receive the schema's
 * output. An event that fails never reaches a handler: each handler of it
 * fails with {@link EventValidationError} (logged and counted by the bus
 * without the data, nacked: dead-lettered on redis groups once its
 * attempts are spent, dropped elsewhere). Without schemas nothing is
 * wrapped and nothing costs.
 */
@Injectable()
export class EventValidator {
  readonly schemas?: EventSchemas;
  /** One validation per event, shared by its handlers: the event with the schema's output as data. */
  private readonly validated = new WeakMap<HeraldEvent, Promise<HeraldEvent>>();
  /** The wrapper of each handler given to `register`, for `unregister`. */
  private readonly wrappers = new WeakMap<EventHandler, EventHandler>();

  /** Events refused on arrival (each counted once, however many handlers it had). */
  refused = 0;
  private readonly warnings: WarningLimiter;

  constructor(@Optional() @Inject(EVENTS_MODULE_OPTIONS) options?: EventsModuleOptions) {
    this.schemas = resolveSchemas('EventsModule', options?.schemas);
    this.warnings = new WarningLimiter(options?.logger ?? new Logger('Herald'));
  }

  private schemaOf(source: string, event: string): StandardSchemaV1 | undefined {
    return this.schemas && Object.hasOwn(this.schemas, source)
      ? Object.hasOwn(this.schemas[source], event)
        ? this.schemas[source][event]
        : undefined
      : undefined;
  }

  /** Whether `post` must validate first. */
  has(source: string, event: string): boolean {
    return this.schemaOf(source, event) !== undefined;
  }

  /** Validates `data`; resolves to the schema's output, rejects with {@link EventValidationError}. */
  async validate(source: string, event: string, data: unknown, arriving = false): Promise<unknown> {
    const schema = this.schemaOf(source, event);
    if (!schema) return data;
    const result: StandardSchemaResult<unknown> = await schema['~standard'].validate(data);
    if (result.issues) throw new EventValidationError(source, event, result.issues, !arriving);
    return result.value;
  }

  /** `handler`, validating each event with a schema before it runs (the same function when there are no schemas). */
  wrap(handler: EventHandler): EventHandler {
    if (!this.schemas) return handler;
    const known = this.wrappers.get(handler);
    if (known) return known;
    const name = handler.name || 'anonymous';
    const wrapped = {
      [name]: (data: unknown, event: HeraldEvent): unknown => {
        if (!this.has(event.source, event.event)) return handler(data, event);
        let checked = this.validated.get(event);
        if (!checked) {
          // One event object for all its handlers: scoped ones share one DI context per event.
          checked = this.validate(event.source, event.event, data, true).then(
            value => (Object.is(value, event.data) ? event : { ...event, data: value }),
            (error: unknown) => {
              this.refused++;
              const path = error instanceof EventValidationError ? error.path : undefined;
              this.warnings.warn(
                `invalid:${event.source}/${event.event}`,
                logLine(
                  'bus',
                  'event-invalid',
                  'event refused by its schema before any handler ran; its handlers fail with EventValidationError and it is nacked',
                  {
                    source: event.source,
                    event: event.event,
                    id: event.id,
                    origin: event.origin,
                    attempt: event.attempt,
                    path,
                  },
                ),
              );
              throw error;
            },
          );
          this.validated.set(event, checked);
        }
        return checked.then(valid => handler(valid.data, valid));
      },
    }[name];
    this.wrappers.set(handler, wrapped);
    return wrapped;
  }

  /** What `register` registered for `handler`. */
  wrapperOf(handler: EventHandler): EventHandler {
    return this.wrappers.get(handler) ?? handler;
  }
}
