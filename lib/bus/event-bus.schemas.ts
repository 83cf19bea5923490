import { InvalidEventError } from '../common/errors.js';
import { invalidOption } from '../common/options.validation.js';
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
   * True for an event refused on arrival: the transport settles it as an
   * event no handler can read (redis groups dead-letter it at once rather
   * than deliver it again).
   */
  readonly undecodable: boolean;
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
    this.undecodable = !withMessages;
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

/** `schemas` as given to the bus or `forRoot`, checked: an object of objects of Standard Schemas. */
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

/** A check's end: the schema's output, or why the data was refused. */
export type SchemaCheck =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/**
 * The bus's schemas (option `schemas`): one lookup per event, a validation
 * that stays synchronous when the schema's is (no promise, no microtask),
 * a promise only for async validators. A schema that throws refuses the
 * event with its error.
 */
export class EventSchemaSet {
  constructor(private readonly schemas: EventSchemas) {}

  /** The schema of one source/event, if any. */
  schemaOf(source: string, event: string): StandardSchemaV1 | undefined {
    const events = Object.hasOwn(this.schemas, source) ? this.schemas[source] : undefined;
    return events && Object.hasOwn(events, event) ? events[event] : undefined;
  }

  /**
   * Validates `data` by `schema`. `arriving`: the error's message names the
   * paths only (it is logged), and the error is marked undecodable.
   */
  check(
    schema: StandardSchemaV1,
    source: string,
    event: string,
    data: unknown,
    arriving: boolean,
  ): SchemaCheck | Promise<SchemaCheck> {
    let result: StandardSchemaResult<unknown> | Promise<StandardSchemaResult<unknown>>;
    try {
      result = schema['~standard'].validate(data);
    } catch (error) {
      return { ok: false, error };
    }
    if (!isThenable(result)) return ended(result, source, event, arriving);
    return Promise.resolve(result).then(
      done => ended(done, source, event, arriving),
      (error: unknown): SchemaCheck => ({ ok: false, error }),
    );
  }
}

function ended(
  result: StandardSchemaResult<unknown>,
  source: string,
  event: string,
  arriving: boolean,
): SchemaCheck {
  if (result.issues) {
    return { ok: false, error: new EventValidationError(source, event, result.issues, !arriving) };
  }
  return { ok: true, value: result.value };
}
