/**
 * The socket endpoint is unreachable: a proxy in front of a real server forwards plain HTTP but
 * refuses every upgrade. The SDK completes the QR flow over HTTP long-poll alone, reports the
 * fallback transport, and takes the socket back once upgrades get through again.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { SubscriptionEvent } from '@handoff/client-sdk';
import { ANA, MODES, login, startCluster, type Cluster } from '../harness/cluster.js';
import { Clients, recordStates, recordTransport, stateReached, subscribed, transportReached } from './helpers.js';
import { startUpgradeProxy, type UpgradeProxy } from './upgrade-proxy.js';

let cluster: Cluster;
let appToken: string;
let proxy: UpgradeProxy;
const clients = new Clients();

beforeAll(async () => {
  cluster = await startCluster(MODES[0]);
  appToken = await login(cluster.phone, ANA);
});
afterEach(async () => {
  clients.closeAll();
  await proxy?.close();
});
afterAll(() => cluster?.stop());

it('completes the QR flow over long-poll alone when upgrades are refused, and reports the fallback', async () => {
  proxy = await startUpgradeProxy(cluster.browser, { refuseUpgrades: true });
  const handoff = clients.make({ url: proxy.url });
  const app = clients.make({ url: cluster.phone, token: appToken });
  const transport = recordTransport(handoff);

  const qr = await handoff.qrLogin();
  const states = recordStates(qr);
  await transportReached(handoff, (state) => state === 'fallback');
  expect(handoff.transport).toBe('long-poll');
  await subscribed(qr);

  await app.scan(qr.id);
  expect((await stateReached(qr, 'scanned')).scannedBy?.displayName).toBe('Ana');
  await app.confirm(qr.id);
  const session = await qr.session({ timeout: 15_000 });
  expect(session.user.email).toBe(ANA.email);
  await stateReached(qr, 'redeemed');

  expect(states.map((s) => s.state)).toEqual(['pending', 'scanned', 'confirmed', 'redeemed']);
  expect(transport.map((e) => e.newState)).not.toContain('connected');
  expect(transport.find((e) => e.newState === 'fallback')).toMatchObject({ transport: 'long-poll', code: 'fallback_failures' });
  expect(proxy.refused).toBeGreaterThanOrEqual(2);
  expect(proxy.passed).toBe(0);
});

it('tries the socket again from fallback and moves the flow back onto it when upgrades get through', async () => {
  proxy = await startUpgradeProxy(cluster.browser, { refuseUpgrades: true });
  const handoff = clients.make({ url: proxy.url, minReconnectDelay: 50, maxReconnectDelay: 300 });
  const app = clients.make({ url: cluster.phone, token: appToken });
  const qr = await handoff.qrLogin();
  const states = recordStates(qr);
  const subscriptions: SubscriptionEvent[] = [];
  qr.on('subscription', (e) => subscriptions.push(e));
  await transportReached(handoff, (state) => state === 'fallback');
  await subscribed(qr);

  proxy.refuseUpgrades = false;
  await transportReached(handoff, (state, name) => state === 'connected' && name === 'websocket');
  await subscribed(qr);
  expect(proxy.passed).toBeGreaterThanOrEqual(1);
  // (`subscribing/subscribe` came at creation, before this listener.)
  expect(subscriptions.map((e) => `${e.newState}/${e.code}`)).toEqual([
    'subscribed/subscribed', // long-poll snapshot
    'subscribing/transport_changed',
    'subscribed/subscribed', // socket snapshot
  ]);

  await app.scan(qr.id);
  await app.confirm(qr.id);
  expect((await qr.session({ timeout: 15_000 })).user.email).toBe(ANA.email);
  await stateReached(qr, 'redeemed');
  expect(states.map((s) => s.state)).toEqual(['pending', 'scanned', 'confirmed', 'redeemed']);
});
