import { afterEach, describe, expect, it } from 'vitest';
import { openEventClient, type EventClient } from '../helpers/ws-client.js';
import { rawRequest, requestText, upgradeHeaders } from './raw-http.js';
import { bearer, setups, startListening, type ListeningService } from './setups.js';

let s: ListeningService | undefined;
const clients: EventClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await s?.service.close();
  s = undefined;
});

const open = async (key: string) => {
  const client = await openEventClient(`ws://127.0.0.1:${s!.port}/ws/notifications`, bearer(key));
  clients.push(client);
  return client;
};
const refused = (key: string) => rawRequest(s!.port, requestText('GET', '/ws/notifications', s!.port, upgradeHeaders(bearer(key))), { waitForCloseMs: 3000 });

describe('WebSocket connection caps', () => {
  it.each(setups().map((setup) => [setup.name, setup] as const))(
    'when a key holds WS_MAX_CONNECTIONS_PER_KEY sockets, or the process WS_MAX_CONNECTIONS, on %s, then the next upgrade is refused before the handshake and closed; a closed socket frees its slot',
    async (_name, setup) => {
      if (setup.skip) return;
      s = await startListening(setup, { API_KEYS: 'k1,k2', WS_MAX_CONNECTIONS_PER_KEY: '2', WS_MAX_CONNECTIONS: '3' });

      const first = await open('k1');
      await open('k1');
      const perKey = await refused('k1');
      await open('k2');
      const total = await refused('k2');

      expect(perKey.status).toBe(429);
      expect(JSON.parse(perKey.body).code).toBe('too_many_connections');
      expect(perKey.closedByServer).toBe(true);
      expect(total.status).toBe(503);
      expect(JSON.parse(total.body).code).toBe('connection_limit_reached');
      expect(total.closedByServer).toBe(true);

      first.close();
      await expect.poll(async () => (await refused('k1')).status, { timeout: 5000 }).toBe(101);
    },
  );

  it('when the service runs open, then the cap counts per address', async () => {
    s = await startListening({ database: 'pglite', rabbitmq: false }, { WS_MAX_CONNECTIONS_PER_KEY: '1' });

    clients.push(await openEventClient(`ws://127.0.0.1:${s.port}/ws/notifications`));
    const second = await rawRequest(s.port, requestText('GET', '/ws/notifications', s.port, upgradeHeaders()), { waitForCloseMs: 3000 });

    expect(second.status).toBe(429);
    expect(second.closedByServer).toBe(true);
  });
});
