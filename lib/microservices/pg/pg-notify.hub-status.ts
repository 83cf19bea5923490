import type { PgHubState } from '../../transports/pg/pg.hub.js';
import type { HeraldMicroserviceStatus } from '../microservice.interface.js';

/** The status a PgNotify server or client takes when its hub reaches a state (`idle`: none). */
export const HUB_STATUS: Readonly<Record<PgHubState, HeraldMicroserviceStatus | undefined>> = {
  idle: undefined,
  connecting: 'connecting',
  connected: 'connected',
  reconnecting: 'reconnecting',
  stopping: 'disconnected',
  stopped: 'disconnected',
};
