import { HeraldError, InvalidEventError } from '../../common/errors.js';

/**
 * A topic that is not a lower-case PostgreSQL identifier of at most 63 bytes
 * (`^[a-z_][a-z0-9_]{0,62}$`). @publicApi
 */
export class InvalidTopicError extends InvalidEventError {
  constructor(readonly topic: unknown) {
    super(
      `invalid topic ${JSON.stringify(String(topic))}: a topic must match ^[a-z_][a-z0-9_]{0,62}$ ` +
        '(PostgreSQL folds other channel names to lower case or cuts them at 63 bytes)',
    );
  }
}

/**
 * A notification payload that is not a pg-hub event (`e<keys>[:json]`):
 * counted and logged by the hub, never thrown at a consumer. @publicApi
 */
export class PgDecodeError extends HeraldError {
  constructor(readonly reason: string) {
    super(`not a pg-hub payload: ${reason}`);
  }
}
