import { StreamEntryError, UnknownOperationError } from './redis.errors.js';

/**
 * What happened, as the original's `EventAction`: an operation name (e.g.
 * `thing.create`) and the action's own fields, all strings (nested data as
 * JSON strings, lists as the action chooses, e.g. comma-joined ids).
 * @publicApi
 */
export interface EventAction {
  operation(): string;
  encode(): Readonly<Record<string, string>>;
}

/** Who triggered an event (the original's JWT identity). @publicApi */
export interface EventIdentity {
  readonly userId: string;
  readonly email?: string;
}

/**
 * A platform event (the original's `Event`): the action, when it occurred and
 * whose it is. @publicApi
 */
export interface StreamEvent {
  readonly action: EventAction;
  /**
   * A Date, or an RFC 3339 string kept as written (nanoseconds included).
   * @default the time of `publish`
   */
  readonly occurredAt?: Date | string;
  readonly orgId?: string;
  readonly groupId?: string;
  readonly identity?: EventIdentity;
}

/**
 * An event read back from a stream: the envelope fields by name, the action's
 * fields in `fields`, and `occurredAt` exactly as written (RFC 3339 with up
 * to nine fractional digits; a JS Date would keep only milliseconds).
 * @publicApi
 */
export interface DecodedStreamEvent {
  readonly operation: string;
  readonly occurredAt?: string;
  readonly orgId: string;
  readonly groupId: string;
  readonly identity?: EventIdentity;
  /** The action's own fields (everything but the envelope fields). */
  readonly fields: Readonly<Record<string, string>>;
}

/** Field names of the original's stream layout. */
export const EVENT_FIELDS = {
  operation: 'operation',
  occurredAt: 'occurred_at',
  orgId: 'evt_org_id',
  groupId: 'evt_group_id',
  userId: 'jwt_identity_user_id',
  userEmail: 'jwt_identity_user_email',
} as const;

const ENVELOPE_FIELDS = new Set<string>(Object.values(EVENT_FIELDS));
const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A Date as Go's `time.RFC3339Nano` writes it in UTC: trailing zeros of the
 * fraction dropped, no fraction at all for whole seconds.
 * @publicApi
 */
export function formatRfc3339Nano(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('invalid Date');
  const iso = date.toISOString(); // 2024-01-02T03:04:05.120Z
  const fraction = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 19)}${fraction ? `.${fraction}` : ''}Z`;
}

/**
 * Parses an RFC 3339 time with up to nanosecond precision.
 * @returns the instant in ms and the nanoseconds within its second.
 * @publicApi
 */
export function parseRfc3339Nano(text: string): { readonly ms: number; readonly nanos: number } {
  const match = RFC3339.exec(text);
  if (!match)
    throw new StreamEntryError(EVENT_FIELDS.occurredAt, `'${text}' is not an RFC 3339 time`);
  const nanos = Number((match[2] ?? '.0').slice(1).padEnd(9, '0'));
  const ms = Date.parse(`${match[1]}${match[3]}`) + Math.floor(nanos / 1e6);
  if (Number.isNaN(ms))
    throw new StreamEntryError(EVENT_FIELDS.occurredAt, `'${text}' is not a valid time`);
  return { ms, nanos };
}

/** Encodes a value for a stream field as the original does: strings as they are, anything else as JSON. @publicApi */
export function jsonField(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Lays an event out as the original writes its stream entry: `operation`,
 * `evt_org_id`, `evt_group_id` always; `occurred_at` (RFC 3339 nanoseconds,
 * UTC); the JWT identity fields when a user id is set; then the action's
 * fields. Every value is a string.
 * @returns a flat `[field, value, ...]` list, ready for XADD.
 * @publicApi
 */
export function encodeStreamEvent(
  event: StreamEvent,
  now: () => Date = () => new Date(),
): string[] {
  const action = event.action;
  if (!action || typeof action.operation !== 'function' || typeof action.encode !== 'function') {
    throw new TypeError('event.action must implement operation() and encode()');
  }
  const operation = action.operation();
  if (typeof operation !== 'string' || operation === '') {
    throw new StreamEntryError(
      EVENT_FIELDS.operation,
      'operation() must return a non-empty string',
    );
  }
  const occurred = event.occurredAt ?? now();
  let occurredAt: string;
  if (typeof occurred === 'string') {
    parseRfc3339Nano(occurred);
    occurredAt = occurred;
  } else {
    occurredAt = formatRfc3339Nano(occurred);
  }
  const out: string[] = [
    EVENT_FIELDS.operation,
    operation,
    EVENT_FIELDS.occurredAt,
    occurredAt,
    EVENT_FIELDS.orgId,
    event.orgId ?? '',
    EVENT_FIELDS.groupId,
    event.groupId ?? '',
  ];
  if (event.identity?.userId) {
    out.push(EVENT_FIELDS.userId, event.identity.userId);
    out.push(EVENT_FIELDS.userEmail, event.identity.email ?? '');
  }
  const fields = action.encode();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string') {
      throw new StreamEntryError(
        name,
        `action fields must be strings (got ${typeof value}); use jsonField()`,
      );
    }
    if (ENVELOPE_FIELDS.has(name)) throw new StreamEntryError(name, 'is an envelope field name');
    out.push(name, value);
  }
  return out;
}

/** A flat `[field, value, ...]` reply as an object (a repeated field keeps its last value). @publicApi */
export function fieldsToRecord(flat: readonly string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) setField(record, flat[i], flat[i + 1]);
  return record;
}

/** Sets an own property even for a field named `__proto__` (which `=` would swallow). */
function setField(record: Record<string, string>, name: string, value: string): void {
  if (name === '__proto__') {
    Object.defineProperty(record, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    record[name] = value;
  }
}

/**
 * Reads an entry written in the original's layout.
 * @param known when given, an operation outside it throws {@link UnknownOperationError}
 * @throws StreamEntryError when `operation` is missing or `occurred_at` is not RFC 3339
 * @publicApi
 */
export function decodeStreamEvent(
  fields: Readonly<Record<string, string>>,
  known?: ReadonlySet<string>,
): DecodedStreamEvent {
  const operation = fields[EVENT_FIELDS.operation];
  if (typeof operation !== 'string' || operation === '') {
    throw new StreamEntryError(EVENT_FIELDS.operation, 'missing');
  }
  if (known && !known.has(operation)) throw new UnknownOperationError(operation);
  const occurredAt = fields[EVENT_FIELDS.occurredAt];
  if (occurredAt !== undefined && occurredAt !== '') parseRfc3339Nano(occurredAt);
  const rest: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (!ENVELOPE_FIELDS.has(name)) setField(rest, name, value);
  }
  const userId = fields[EVENT_FIELDS.userId];
  return {
    operation,
    occurredAt: occurredAt === '' ? undefined : occurredAt,
    orgId: fields[EVENT_FIELDS.orgId] ?? '',
    groupId: fields[EVENT_FIELDS.groupId] ?? '',
    identity: userId ? { userId, email: fields[EVENT_FIELDS.userEmail] || undefined } : undefined,
    fields: rest,
  };
}
