import { HUB_STATUS } from '../../../../lib/microservices/pg/pg-notify.hub-status.js';

describe('HUB_STATUS', () => {
  it('maps every hub state to a microservice status; idle reports none', () => {
    expect(HUB_STATUS).toEqual({
      idle: undefined,
      connecting: 'connecting',
      connected: 'connected',
      reconnecting: 'reconnecting',
      stopping: 'disconnected',
      stopped: 'disconnected',
    });
  });
});
