import { PgHub, type PgHubState } from '../../../lib/pg/index.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

describe('PgHub status$ (issue 14)', () => {
  it('reports every state on status$; the deprecated state event is fed from it; a consumer has its own', async () => {
    const hub = new PgHub({ connectionString: PG_URL, applicationName: uniqueName('status') });
    const states: PgHubState[] = [];
    const events: PgHubState[] = [];
    hub.status$.subscribe(status => void states.push(status.state));
    hub.on('state', (state: PgHubState) => void events.push(state));
    const consumer = hub.consumer(() => undefined, uniqueName('st').toLowerCase());
    const consumerStates: string[] = [];
    consumer.status$.subscribe(
      status => void consumerStates.push(`${status.state}:${status.reason ?? ''}`),
    );
    await hub.start();
    await hub.stop();
    await waitFor(() => states.includes('stopped'));
    expect(states).toEqual(['idle', 'connecting', 'connected', 'stopping', 'stopped']);
    expect(events).toEqual(['connecting', 'connected', 'stopping', 'stopped']);
    expect(consumerStates).toEqual(['open:', 'closed:hub stopped']);
  });
});
