/**
 * An app refreshes its JWT through the `token` function, against a real server: a token the
 * server refuses is followed by the one the function gives next, on the socket handshake and on
 * HTTP.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ANA, MODES, login, startCluster, type Cluster } from '../harness/cluster.js';
import { Clients, stateReached } from './helpers.js';

let cluster: Cluster;
let anaToken: string;
const clients = new Clients();

beforeAll(async () => {
  cluster = await startCluster(MODES[0]);
  anaToken = await login(cluster.phone, ANA);
});
afterEach(() => clients.closeAll());
afterAll(() => cluster?.stop());

/** A token function that first answers an expired-looking token, then Ana's valid one (async, as a refresh would be). */
function refreshing(): { token: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return { token: async () => (calls++ === 0 ? 'expired.jwt.token' : anaToken), calls: () => calls };
}

it('the socket refused for the first token connects with the one the function gives next, and scans over it', async () => {
  const browser = clients.make({ url: cluster.browser });
  const qr = await browser.qrLogin();
  const tokens = refreshing();
  const app = clients.make({ url: cluster.phone, token: tokens.token, longPoll: false });
  expect(await app.connect({ timeout: 10_000 })).toBe('connected');
  expect(tokens.calls()).toBe(2);
  const { requester } = await app.scan(qr.id);
  expect(requester.userAgent).toBe('TestBrowser/1.0');
  expect((await stateReached(qr, 'scanned')).scannedBy?.displayName).toBe('Ana');
});

it('over HTTP, a scan answered 401 is retried once with the token the function gives next', async () => {
  const browser = clients.make({ url: cluster.browser });
  const qr = await browser.qrLogin();
  const tokens = refreshing();
  const app = clients.make({ url: cluster.phone, token: tokens.token });
  expect(app.state).toBe('disconnected'); // no socket: scan goes over HTTP
  expect((await app.scan(qr.id)).state).toMatchObject({ state: 'scanned', version: 2 });
  expect(tokens.calls()).toBe(2);
});
