import { logLine } from '../../../lib/common/log-line.js';

describe('logLine', () => {
  it('writes transport, code and message', () => {
    expect(logLine('pg', 'listen-lost', 'LISTEN connection lost')).toBe(
      'pg listen-lost: LISTEN connection lost',
    );
  });

  it('appends the identifying fields, leaving out empty ones and quoting what needs it', () => {
    expect(
      logLine('redis', 'handler-failed', 'handler threw', {
        source: 'orders',
        event: 'created',
        id: undefined,
        handler: 'A.b',
        reason: 'bad thing',
      }),
    ).toBe(
      'redis handler-failed: handler threw [source=orders event=created handler=A.b reason="bad thing"]',
    );
  });

  it('writes no brackets when every field is empty', () => {
    expect(logLine('bus', 'x', 'y', { id: undefined })).toBe('bus x: y');
  });
});
