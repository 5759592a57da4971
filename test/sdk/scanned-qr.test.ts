/**
 * The phone watches the QR flow it scanned, without the watch token (`handoff.watchScanned(id)`),
 * against real server processes: over the socket (embedded, and across two Redis nodes: browser
 * on node A, phone on node B), over long-poll with its Bearer JWT when upgrades are refused, and
 * refused for a user who did not scan.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ScannedQr, SubscriptionEvent } from '@handoff/client-sdk';
import { ANA, BOB, MODES, login, startCluster, type Cluster } from '../harness/cluster.js';
import { Clients, recordStates, stateReached, transportReached } from './helpers.js';
import { startUpgradeProxy, type UpgradeProxy } from './upgrade-proxy.js';

const SDK_MODES = MODES.filter((m) => m.name === 'embedded' || m.name === 'redis, two nodes');

/** Resolves with the event that ended the watch's subscription. */
function ended(watch: ScannedQr, timeoutMs = 15_000): Promise<SubscriptionEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the watch never ended; it is ${watch.subscriptionState}`)), timeoutMs);
    const off = watch.on('subscription', (e) => {
      if (e.newState !== 'unsubscribed') return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

describe.each(SDK_MODES)('the phone watches the QR flow it scanned ($name)', (mode) => {
  let cluster: Cluster;
  let anaToken: string;
  let bobToken: string;
  const clients = new Clients();

  beforeAll(async () => {
    cluster = await startCluster(mode);
    [anaToken, bobToken] = await Promise.all([login(cluster.phone, ANA), login(cluster.phone, BOB)]);
  });
  afterEach(() => clients.closeAll());
  afterAll(() => cluster?.stop());

  /** A QR code shown on node A and scanned by Ana on node B, who then watches it. */
  async function scannedAndWatched() {
    const qr = await clients.make({ url: cluster.browser }).qrLogin();
    const app = clients.make({ url: cluster.phone, token: anaToken });
    await app.scan(qr.id);
    const watch = app.watchScanned(qr.id);
    return { qr, app, watch, states: recordStates(watch), end: ended(watch) };
  }

  it("is pushed the browser's cancel over its socket, and the watch ends", async () => {
    const { qr, app, watch, states, end } = await scannedAndWatched();
    expect(watch.topic).toBe(`qr:${qr.id}`);
    expect((await stateReached(watch, 'scanned')).scannedBy).toMatchObject({ displayName: 'Ana' });
    expect(app.transport).toBe('websocket');

    await qr.cancel();
    expect((await stateReached(watch, 'cancelled')).version).toBe(3);
    expect(await end).toMatchObject({ newState: 'unsubscribed', code: 'final' });
    expect(states.map((s) => `${s.state}:${s.version}`)).toEqual(['scanned:2', 'cancelled:3']);
    expect(JSON.stringify(watch)).not.toContain(anaToken);
  });

  it('sees its confirm, then redeemed once the browser took the session', async () => {
    const { qr, app, watch, states, end } = await scannedAndWatched();
    await stateReached(watch, 'scanned');

    await app.confirm(qr.id);
    await stateReached(watch, 'confirmed');
    await qr.session({ timeout: 15_000 });
    await stateReached(watch, 'redeemed');
    expect(states.map((s) => `${s.state}:${s.version}`)).toEqual(['scanned:2', 'confirmed:3', 'redeemed:4']);
    expect(await end).toMatchObject({ code: 'final' });
  });

  it('is refused for a user who did not scan: the watch ends failed with invalid_watch_token', async () => {
    const browser = clients.make({ url: cluster.browser });
    const ana = clients.make({ url: cluster.phone, token: anaToken });
    const bob = clients.make({ url: cluster.phone, token: bobToken });
    const qr = await browser.qrLogin();
    await ana.scan(qr.id);

    const watch = bob.watchScanned(qr.id);
    const end = await ended(watch);
    expect(end).toMatchObject({ newState: 'unsubscribed', code: 'failed', error: { code: 'invalid_watch_token' } });
    expect(watch.state).toBeNull();
  });

  it('without a token, the watch ends failed with unauthorized (no anonymous subscribe)', async () => {
    const qr = await clients.make({ url: cluster.browser }).qrLogin();
    const anonymous = clients.make({ url: cluster.phone });
    await anonymous.connect();
    expect(anonymous.state).toBe('connected');
    expect(await ended(anonymous.watchScanned(qr.id))).toMatchObject({ code: 'failed', error: { code: 'unauthorized' } });
  });
});

describe('in the long-poll fallback', () => {
  let cluster: Cluster;
  let anaToken: string;
  let proxy: UpgradeProxy | undefined;
  const clients = new Clients();

  beforeAll(async () => {
    cluster = await startCluster(MODES[0]);
    anaToken = await login(cluster.phone, ANA);
  });
  afterEach(async () => {
    clients.closeAll();
    await proxy?.close();
  });
  afterAll(() => cluster?.stop());

  it("long-polls with the phone's Bearer JWT and sees the browser's cancel", async () => {
    proxy = await startUpgradeProxy(cluster.phone, { refuseUpgrades: true });
    const browser = clients.make({ url: cluster.browser });
    const app = clients.make({ url: proxy.url, token: anaToken });
    const qr = await browser.qrLogin();
    await app.scan(qr.id);

    const watch = app.watchScanned(qr.id);
    const end = ended(watch);
    await transportReached(app, (state) => state === 'fallback');
    expect(app.transport).toBe('long-poll');
    await stateReached(watch, 'scanned');
    await qr.cancel();
    await stateReached(watch, 'cancelled');
    expect(await end).toMatchObject({ code: 'final' });
    expect(proxy.passed).toBe(0);
  });

  /**
   * A phone in the long-poll fallback (its socket is refused) whose token function answers what
   * `next` says; `connect()` settles the fallback first, so the function's later calls are the reads'.
   */
  async function phoneInFallback(next: () => string) {
    proxy = await startUpgradeProxy(cluster.phone, { refuseUpgrades: true });
    let calls = 0;
    const app = clients.make({ url: proxy.url, token: () => (calls++, next()) });
    expect(await app.connect()).toBe('fallback');
    return { app, calls: () => calls };
  }

  it('a refused JWT is asked for again and the read retried with the fresh one, as app actions do', async () => {
    const qr = await clients.make({ url: cluster.browser }).qrLogin();
    await clients.make({ url: cluster.phone, token: anaToken }).scan(qr.id);
    let stale = false;
    const { app, calls } = await phoneInFallback(() => {
      if (!stale) return anaToken;
      stale = false; // refused once, refreshed on the next call
      return 'expired.jwt.token';
    });
    stale = true;
    const before = calls();
    const watch = app.watchScanned(qr.id);
    const end = ended(watch);
    await stateReached(watch, 'scanned');
    expect(calls() - before).toBeGreaterThanOrEqual(2); // the refused token, then the fresh one
    await qr.cancel();
    expect(await end).toMatchObject({ code: 'final' });
  });

  it('a token function whose every new token is refused ends the watch unauthorized after one refresh, not in a loop', async () => {
    const qr = await clients.make({ url: cluster.browser }).qrLogin();
    await clients.make({ url: cluster.phone, token: anaToken }).scan(qr.id);
    let minting = false;
    let minted = 0;
    const { app, calls } = await phoneInFallback(() => (minting ? `refused.jwt.${++minted}` : anaToken));
    minting = true;
    const before = calls();
    const end = await ended(app.watchScanned(qr.id));
    expect(end).toMatchObject({ code: 'failed', error: { code: 'unauthorized' } });
    expect(calls() - before).toBe(3); // the refused token, the refresh, the refused refresh
  });

  it('a token function that fails is retried like a network error, not the end of the watch', async () => {
    const qr = await clients.make({ url: cluster.browser }).qrLogin();
    await clients.make({ url: cluster.phone, token: anaToken }).scan(qr.id);
    let failing = false;
    const { app } = await phoneInFallback(() => {
      if (!failing) return anaToken;
      failing = false;
      throw new Error('the refresh endpoint is down');
    });
    failing = true;
    const watch = app.watchScanned(qr.id);
    const events: SubscriptionEvent[] = [];
    watch.on('subscription', (e) => events.push(e));
    await stateReached(watch, 'scanned');
    expect(watch.subscriptionState).toBe('subscribed');
    expect(events.some((e) => e.newState === 'unsubscribed')).toBe(false);
  });

  it('without a token, the long-poll watch ends failed with unauthorized', async () => {
    proxy = await startUpgradeProxy(cluster.phone, { refuseUpgrades: true });
    const browser = clients.make({ url: cluster.browser });
    const app = clients.make({ url: proxy.url });
    const qr = await browser.qrLogin();
    const watch = app.watchScanned(qr.id);
    expect(await ended(watch)).toMatchObject({ code: 'failed', error: { code: 'unauthorized' } });
  });
});
