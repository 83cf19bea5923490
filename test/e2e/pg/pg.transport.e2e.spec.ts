import net from 'node:net';
import pg from 'pg';
import {
  EventBus,
  PayloadTooLargeError,
  createTransport,
  silentLogger,
  type HeraldEvent,
  type TransportState,
} from '../../../lib/index.js';
import { PgHub, PgTransport, isAdvisory, topLevelData } from '../../../lib/pg/index.js';
import { PG_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

describe('PgTransport on a real PostgreSQL', () => {
  let admin: pg.Pool;
  const buses: EventBus[] = [];
  const closers: (() => Promise<void>)[] = [];

  const bus = async (transport: PgTransport): Promise<EventBus> => {
    const made = new EventBus({ logger: silentLogger, transport });
    buses.push(made);
    await made.connect();
    made.start();
    await made.waitUntilReady();
    return made;
  };

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  });

  afterEach(async () => {
    await Promise.all(buses.splice(0).map(b => b.close({ timeoutMs: 2000 })));
    for (const close of closers.splice(0)) await close();
  });

  afterAll(async () => {
    await admin.end();
  });

  it('is what createTransport builds for "pg"', async () => {
    const transport = await createTransport({
      transport: 'pg',
      pg: { connectionString: PG_URL, channel: 'some_channel' },
    });
    expect(transport).toBeInstanceOf(PgTransport);
    expect((transport as PgTransport).channel).toBe('some_channel');
    await transport.close();
  });

  it('refuses an envelope whose pg-hub payload passes 7999 bytes, and sends the others', async () => {
    const channel = uniqueName('big').toLowerCase();
    const b = await bus(new PgTransport({ connectionString: PG_URL, channel }));
    const got: unknown[] = [];
    b.register(data => void got.push(data), 'big');
    // The data fits the bus's check; the envelope around it does not.
    await expect(b.post('big', 'x', 'y'.repeat(7990))).rejects.toThrow(PayloadTooLargeError);
    await b.post('big', 'x', 'small');
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['small']);
  });

  it('counts a herald-looking value that is not JSON, and keeps delivering', async () => {
    const channel = uniqueName('badwire').toLowerCase();
    const transport = new PgTransport({ connectionString: PG_URL, channel });
    const b = await bus(transport);
    const got: unknown[] = [];
    b.register(data => void got.push(data));
    await admin.query('SELECT pg_notify($1, $2)', [channel, 'e:{"herald":1,"id":"x","data":']);
    await b.post('ok', 'x', 1);
    await waitFor(() => got.length === 1);
    expect(transport.stats().decodeErrors).toBe(1);
  });

  it('finds the data after headers whose keys and values look like it', async () => {
    const channel = uniqueName('headers').toLowerCase();
    const transport = new PgTransport({ connectionString: PG_URL, channel });
    const b = await bus(transport);
    const got: HeraldEvent[] = [];
    b.register((_d, e) => void got.push(e));
    const headers = { a: 'é $', data: '{"x":1}', ',"data":': '}' };
    await b.post('h', 'x', { data: [1, { data: 2 }] }, { headers });
    await b.post('h', 'y', 'plain', { headers: { data: 'd' } });
    await waitFor(() => got.length === 2);
    expect(got[0]).toMatchObject({ data: { data: [1, { data: 2 }] }, headers });
    expect(got[1]).toMatchObject({ data: 'plain', headers: { data: 'd' } });
    expect(transport.stats().decodeErrors).toBe(0);
  });

  it('reads a herald envelope whose members come in another order (e.g. a Go service with sorted keys)', async () => {
    const channel = uniqueName('sorted').toLowerCase();
    const b = await bus(new PgTransport({ connectionString: PG_URL, channel }));
    const got: HeraldEvent[] = [];
    b.register((_d, e) => void got.push(e));
    const value =
      '{"at":"2024-01-01T00:00:00.000Z","data":{"n":1},"event":"e","herald":1,"id":"abc","origin":"go","source":"s"}';
    await admin.query('SELECT pg_notify($1, $2)', [channel, `e5:${value}`]);
    // Our own member order, but with trailing white space.
    const spaced =
      '{"herald":1,"id":"def","source":"s","event":"e","origin":"go","at":"x","data":{"n":2}} \n';
    await admin.query('SELECT pg_notify($1, $2)', [channel, `e:${spaced}`]);
    await waitFor(() => got.length === 2);
    expect(got[1]).toMatchObject({ id: 'def', data: { n: 2 } });
    expect(got[0]).toMatchObject({
      id: 'abc',
      source: 's',
      event: 'e',
      data: { n: 1 },
      key: [5n],
      origin: 'go',
    });
  });

  it('reports reconnecting then connected when its LISTEN connection is killed, and stops intake with UNLISTEN', async () => {
    const channel = uniqueName('status').toLowerCase();
    const applicationName = uniqueName('tstatus');
    const transport = new PgTransport({
      connectionString: PG_URL,
      channel,
      applicationName,
      reconnectMs: 50,
    });
    const states: TransportState[] = [];
    transport.status$.subscribe(status => void states.push(status.state));
    const b = await bus(transport);
    const got: unknown[] = [];
    b.register(data => void got.push(data));
    await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
      [`${applicationName}/listen`],
    );
    await waitFor(() => states.filter(s => s === 'connected').length === 2);
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    await b.post('after', 'kill', 1);
    await waitFor(() => got.length === 1);
    await transport.stopIntake();
    await waitFor(async () => (await transport.hub.listeningChannels()).length === 0);
  });

  it('shares a hub it does not own: closing the transport leaves the hub running', async () => {
    const channel = uniqueName('shared').toLowerCase();
    const hub = new PgHub({ connectionString: PG_URL });
    closers.push(() => hub.stop());
    const other: unknown[] = [];
    const consumer = hub.consumer(event => void (isAdvisory(event) || other.push(event.value)));
    await Promise.all([hub.start(), consumer.subscribe('shared_other')]);
    const transport = new PgTransport({ hub, channel });
    const b = await bus(transport);
    expect(await hub.listeningChannels()).toEqual([channel, 'shared_other'].sort());
    await b.close();
    expect(hub.state).toBe('connected');
    expect(await hub.listeningChannels()).toEqual(['shared_other']);
    await hub.notify('shared_other', 1n, 'still');
    await waitFor(() => other.length === 1);
  });

  it('notices a silent dead peer with its heartbeat and reconnects', async () => {
    // A proxy whose existing connections can be frozen: bytes stop, sockets stay open.
    const { host, port } = hostPort(PG_URL);
    const frozen = new Set<net.Socket>();
    const pipes: { client: net.Socket; upstream: net.Socket }[] = [];
    const server = net.createServer(client => {
      const upstream = net.connect(port, host);
      pipes.push({ client, upstream });
      client.on('error', () => undefined);
      upstream.on('error', () => undefined);
      client.on('data', chunk => void (frozen.has(client) || upstream.write(chunk)));
      upstream.on('data', chunk => void (frozen.has(client) || client.write(chunk)));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      for (const { client, upstream } of pipes) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise(resolve => server.close(resolve));
    });
    const url = new URL(PG_URL);
    url.hostname = '127.0.0.1';
    url.port = String((server.address() as net.AddressInfo).port);
    const channel = uniqueName('heartbeat').toLowerCase();
    const transport = new PgTransport({
      connectionString: url.toString(),
      channel,
      heartbeatMs: 100,
      reconnectMs: 50,
    });
    const states: TransportState[] = [];
    transport.status$.subscribe(status => void states.push(status.state));
    const b = await bus(transport);
    const got: unknown[] = [];
    b.register(data => void got.push(data));
    for (const { client } of pipes) frozen.add(client);
    await waitFor(() => states.includes('reconnecting'));
    await waitFor(() => states.filter(s => s === 'connected').length === 2);
    await b.post('after', 'freeze', 1);
    await waitFor(() => got.length === 1);
    expect(transport.stats().disconnectCount).toBe(1);
  });
});

describe('topLevelData', () => {
  it('finds the top-level data member only', () => {
    const json =
      '{"herald":1,"id":"a,\\"data\\":","headers":{"data":"x",",\\"data\\":":"y"},"data":{"data":1}}';
    const at = topLevelData(json);
    expect(json.slice(at + 8, -1)).toBe('{"data":1}');
    expect(topLevelData('{"herald":1,"id":"x"}')).toBe(-1);
    expect(topLevelData('{"a":[1,{"b":2}],"data":[]}')).toBe(16);
  });
});
