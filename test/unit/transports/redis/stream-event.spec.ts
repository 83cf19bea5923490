import {
  EVENT_FIELDS,
  StreamEntryError,
  UnknownOperationError,
  decodeStreamEvent,
  encodeStreamEvent,
  fieldsToRecord,
  formatRfc3339Nano,
  jsonField,
  parseRfc3339Nano,
  type EventAction,
} from '../../../../lib/redis/index.js';

// Actions laid out as the original's (research §4.2): all strings, nested data as JSON, lists comma-joined.
class ThingCreated implements EventAction {
  constructor(
    readonly id: string,
    readonly groupId: string,
    readonly profileId: string,
    readonly name?: string,
    readonly metadata?: Record<string, unknown>,
  ) {}
  operation(): string {
    return 'thing.create';
  }
  encode(): Record<string, string> {
    const out: Record<string, string> = {
      id: this.id,
      group_id: this.groupId,
      profile_id: this.profileId,
    };
    if (this.name) out.name = this.name;
    if (this.metadata) out.metadata = jsonField(this.metadata);
    return out;
  }
}

class GroupRemoved implements EventAction {
  constructor(
    readonly id: string,
    readonly thingIds: string[],
  ) {}
  operation(): string {
    return 'group.remove';
  }
  encode(): Record<string, string> {
    return this.thingIds.length
      ? { id: this.id, thing_ids: this.thingIds.join(',') }
      : { id: this.id };
  }
}

// Entries as the Go publisher writes them (field order is random there: compare as maps).
const GOLDEN_THING_CREATE: Record<string, string> = {
  operation: 'thing.create',
  evt_org_id: 'org-1',
  evt_group_id: '',
  occurred_at: '2024-01-02T03:04:05.123456789Z',
  jwt_identity_user_id: 'user-7',
  jwt_identity_user_email: 'u7@example.com',
  id: 'thing-1',
  group_id: 'group-1',
  profile_id: 'profile-1',
  name: 'lamp',
  metadata: '{"floor":2,"tags":["a","b"]}',
};

const GOLDEN_GROUP_REMOVE: Record<string, string> = {
  operation: 'group.remove',
  evt_org_id: '',
  evt_group_id: 'group-9',
  occurred_at: '2024-01-02T03:04:05Z',
  id: 'group-9',
  thing_ids: 't1,t2,t3',
};

describe('stream events in the original layout', () => {
  it('decodes golden entries and keeps the nanoseconds', () => {
    const event = decodeStreamEvent(GOLDEN_THING_CREATE);
    expect(event.operation).toBe('thing.create');
    expect(event.occurredAt).toBe('2024-01-02T03:04:05.123456789Z');
    expect(parseRfc3339Nano(event.occurredAt!)).toEqual({
      ms: Date.UTC(2024, 0, 2, 3, 4, 5, 123),
      nanos: 123456789,
    });
    expect(event.orgId).toBe('org-1');
    expect(event.groupId).toBe('');
    expect(event.identity).toEqual({ userId: 'user-7', email: 'u7@example.com' });
    expect(event.fields).toEqual({
      id: 'thing-1',
      group_id: 'group-1',
      profile_id: 'profile-1',
      name: 'lamp',
      metadata: '{"floor":2,"tags":["a","b"]}',
    });
    const removed = decodeStreamEvent(GOLDEN_GROUP_REMOVE);
    expect(removed.identity).toBeUndefined();
    expect(removed.fields.thing_ids.split(',')).toEqual(['t1', 't2', 't3']);
  });

  it('encodes field for field as the original writes them', () => {
    const flat = encodeStreamEvent({
      action: new ThingCreated('thing-1', 'group-1', 'profile-1', 'lamp', {
        floor: 2,
        tags: ['a', 'b'],
      }),
      occurredAt: '2024-01-02T03:04:05.123456789Z',
      orgId: 'org-1',
      identity: { userId: 'user-7', email: 'u7@example.com' },
    });
    expect(flat.length % 2).toBe(0);
    expect(fieldsToRecord(flat)).toEqual(GOLDEN_THING_CREATE);
    const removed = encodeStreamEvent({
      action: new GroupRemoved('group-9', ['t1', 't2', 't3']),
      occurredAt: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      groupId: 'group-9',
    });
    expect(fieldsToRecord(removed)).toEqual(GOLDEN_GROUP_REMOVE);
  });

  it('always writes the org and group fields, the identity only with a user id', () => {
    const record = fieldsToRecord(
      encodeStreamEvent({ action: new GroupRemoved('g', []), identity: { userId: '' } }),
    );
    expect(record[EVENT_FIELDS.orgId]).toBe('');
    expect(record[EVENT_FIELDS.groupId]).toBe('');
    expect(record).not.toHaveProperty(EVENT_FIELDS.userId);
    expect(record[EVENT_FIELDS.occurredAt]).toMatch(
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/,
    );
  });

  it('formats times as Go RFC3339Nano (UTC, trailing zeros dropped)', () => {
    expect(formatRfc3339Nano(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 120)))).toBe(
      '2024-01-02T03:04:05.12Z',
    );
    expect(formatRfc3339Nano(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 0)))).toBe(
      '2024-01-02T03:04:05Z',
    );
    expect(formatRfc3339Nano(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 7)))).toBe(
      '2024-01-02T03:04:05.007Z',
    );
    expect(() => formatRfc3339Nano(new Date(NaN))).toThrow(RangeError);
    expect(parseRfc3339Nano('2024-01-02T04:04:05.5+01:00')).toEqual({
      ms: Date.UTC(2024, 0, 2, 3, 4, 5, 500),
      nanos: 500000000,
    });
  });

  it('refuses what the layout cannot carry, with the field named', () => {
    const bad: EventAction = {
      operation: () => 'x.y',
      encode: () => ({ count: 3 as unknown as string }),
    };
    expect(() => encodeStreamEvent({ action: bad })).toThrow(StreamEntryError);
    expect(() => encodeStreamEvent({ action: bad })).toThrow(/count/);
    const clash: EventAction = { operation: () => 'x.y', encode: () => ({ operation: 'evil' }) };
    expect(() => encodeStreamEvent({ action: clash })).toThrow(StreamEntryError);
    const empty: EventAction = { operation: () => '', encode: () => ({}) };
    expect(() => encodeStreamEvent({ action: empty })).toThrow(/operation/);
    expect(() => encodeStreamEvent({ action: {} as EventAction })).toThrow(TypeError);
    expect(() =>
      encodeStreamEvent({ action: new GroupRemoved('g', []), occurredAt: 'yesterday' }),
    ).toThrow(StreamEntryError);
    expect(() => decodeStreamEvent({ id: '1' })).toThrow(/operation/);
    expect(() => decodeStreamEvent({ ...GOLDEN_GROUP_REMOVE, occurred_at: '02/01/2024' })).toThrow(
      /occurred_at/,
    );
  });

  it('throws UnknownOperationError for an operation outside the known set', () => {
    const known = new Set(['thing.create']);
    expect(decodeStreamEvent(GOLDEN_THING_CREATE, known).operation).toBe('thing.create');
    expect(() => decodeStreamEvent(GOLDEN_GROUP_REMOVE, known)).toThrow(UnknownOperationError);
  });

  it('keeps a field named __proto__ as a field', () => {
    const record = fieldsToRecord(['__proto__', 'x', 'operation', 'a.b']);
    expect(Object.keys(record)).toEqual(['__proto__', 'operation']);
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
    expect(Object.keys(decodeStreamEvent(record).fields)).toEqual(['__proto__']);
  });
});
