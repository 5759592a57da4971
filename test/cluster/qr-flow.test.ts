/**
 * The whole QR login, as a browser and a phone live it, over each transport — in embedded mode,
 * in Redis mode, and across two nodes (browser on node A, phone on node B). Real processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANA, MODES, createQr, login, startCluster, type Cluster } from '../harness/cluster.js';
import { WsClient, connectSocketIo, emitAck, http, recordSocketIo } from '../harness/clients.js';

describe.each(MODES)('QR login end to end ($name)', (mode) => {
  let cluster: Cluster;
  let phoneToken: string;

  beforeAll(async () => {
    cluster = await startCluster(mode);
    phoneToken = await login(cluster.phone, ANA);
  });
  afterAll(() => cluster?.stop());

  it('completes over Socket.IO: snapshot, scanned with who, confirmed, redeemed once', async () => {
    const qr = await createQr(cluster.browser);
    const browser = await connectSocketIo(cluster.browser);
    const phone = await connectSocketIo(cluster.phone, { token: phoneToken });
    try {
      const pushes = recordSocketIo(browser);
      const sub = await emitAck(browser, 'subscribe', { topic: qr.topic, watchToken: qr.watchToken });
      expect(sub).toMatchObject({ ok: true, state: { topic: qr.topic, state: 'pending', version: 1 } });

      const scan = await emitAck(phone, 'qr:scan', { id: qr.id });
      expect(scan).toMatchObject({ ok: true, state: { state: 'scanned', version: 2 }, requester: { userAgent: 'TestBrowser/1.0' } });
      expect(scan.requester.ip).toBeTruthy();
      const scanned = await pushes.waitForState('scanned');
      expect(scanned.scannedBy).toMatchObject({ displayName: 'Ana', avatarUrl: null });

      expect(await emitAck(phone, 'qr:confirm', { id: qr.id })).toMatchObject({ ok: true, state: { state: 'confirmed', version: 3 } });
      await pushes.waitForState('confirmed');

      const redeemed = await emitAck(browser, 'redeem', { topic: qr.topic, watchToken: qr.watchToken });
      expect(redeemed).toMatchObject({ ok: true, session: { user: { email: ANA.email } } });
      const me = await http(cluster.browser, 'GET', '/v1/me', { headers: { authorization: `Bearer ${redeemed.session.token}` } });
      expect(me).toMatchObject({ status: 200, body: { email: ANA.email, displayName: 'Ana' } });
      expect((await pushes.waitForState('redeemed')).version).toBe(4);

      const again = await emitAck(browser, 'redeem', { topic: qr.topic, watchToken: qr.watchToken });
      expect(again).toMatchObject({ ok: false, error: { code: 'already_redeemed' } });
      // No push ever carried a session token.
      expect(JSON.stringify(pushes.states)).not.toContain(redeemed.session.token);
      // The version rule: a copy of a version already taken (the already_redeemed answer publishes
      // `redeemed` again, docs/protocol.md §2) is identical and dropped.
      expect(pushes.taken().map((s) => s.version)).toEqual([2, 3, 4]);
      for (const s of pushes.states) expect(s).toEqual(pushes.taken().find((t) => t.version === s.version));
    } finally {
      browser.close();
      phone.close();
    }
  });

  it('completes over plain WebSocket, the phone authenticated on upgrade', async () => {
    const qr = await createQr(cluster.browser);
    const browser = await WsClient.connect(cluster.browser);
    const phone = await WsClient.connect(cluster.phone, { authorization: `Bearer ${phoneToken}` });
    try {
      const sub = await browser.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken });
      expect(sub).toMatchObject({ type: 'reply', ref: 'r1', ok: true, state: { state: 'pending', version: 1 } });

      const scan = await phone.request('qr.scan', { id: qr.id });
      expect(scan).toMatchObject({ ok: true, state: { state: 'scanned' }, requester: { userAgent: 'TestBrowser/1.0' } });
      expect((await browser.states.waitForState('scanned')).scannedBy?.displayName).toBe('Ana');

      expect(await phone.request('qr.confirm', { id: qr.id })).toMatchObject({ ok: true, state: { state: 'confirmed' } });
      await browser.states.waitForState('confirmed');

      const redeemed = await browser.request('redeem', { topic: qr.topic, watchToken: qr.watchToken });
      expect(redeemed).toMatchObject({ ok: true, session: { token: expect.any(String), user: { email: ANA.email } } });
      await browser.states.waitForState('redeemed');
      expect(await browser.request('redeem', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({
        ok: false,
        error: { code: 'already_redeemed' },
      });
    } finally {
      browser.close();
      phone.close();
    }
  });

  it('completes over plain WebSocket with a first-frame auth', async () => {
    const qr = await createQr(cluster.browser);
    const phone = await WsClient.connect(cluster.phone);
    try {
      expect(await phone.request('qr.scan', { id: qr.id })).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
      expect(await phone.request('auth', { token: phoneToken })).toMatchObject({ ok: true });
      expect(await phone.request('qr.scan', { id: qr.id })).toMatchObject({ ok: true, state: { state: 'scanned' } });
    } finally {
      phone.close();
    }
  });

  it('completes over HTTP long-poll, each poll answered as soon as the version moves', async () => {
    const qr = await createQr(cluster.browser);
    const watch = { 'watch-token': qr.watchToken };
    const poll = (after: number) => http(cluster.browser, 'GET', `/v1/flows/${qr.topic}?after=${after}&wait=20`, { headers: watch });
    const auth = { authorization: `Bearer ${phoneToken}` };

    const first = await http(cluster.browser, 'GET', `/v1/flows/${encodeURIComponent(qr.topic)}`, { headers: watch });
    expect(first).toMatchObject({ status: 200, body: { state: 'pending', version: 1 } });
    expect(first.headers.get('cache-control')).toBe('no-store');

    const waiting = poll(1);
    const scan = await http(cluster.phone, 'POST', `/v1/qr/${qr.id}/scan`, { headers: auth });
    expect(scan).toMatchObject({ status: 200, body: { state: 'scanned', requester: { userAgent: 'TestBrowser/1.0' } } });
    expect((await waiting).body).toMatchObject({ state: 'scanned', version: 2, scannedBy: { displayName: 'Ana' } });

    const waiting2 = poll(2);
    expect(await http(cluster.phone, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: auth })).toMatchObject({ status: 200 });
    expect((await waiting2).body).toMatchObject({ state: 'confirmed', version: 3 });

    const session = await http(cluster.browser, 'POST', `/v1/flows/${qr.topic}/session`, { headers: watch });
    expect(session).toMatchObject({ status: 200, body: { token: expect.any(String), user: { email: ANA.email } } });
    expect(await http(cluster.browser, 'POST', `/v1/flows/${encodeURIComponent(qr.topic)}/session`, { headers: watch })).toMatchObject({
      status: 410,
      body: { error: { code: 'already_redeemed' } },
    });
    expect((await poll(3)).body).toMatchObject({ state: 'redeemed', version: 4 });
  });

  it('pushes a cancel from the phone, and one from the browser, to every watcher', async () => {
    const auth = { authorization: `Bearer ${phoneToken}` };
    const fromPhone = await createQr(cluster.browser);
    const fromBrowser = await createQr(cluster.browser);
    const browser = await connectSocketIo(cluster.browser);
    const phoneWs = await WsClient.connect(cluster.phone, auth);
    try {
      const pushes = recordSocketIo(browser);
      await emitAck(browser, 'subscribe', { topic: fromPhone.topic, watchToken: fromPhone.watchToken });
      await emitAck(browser, 'subscribe', { topic: fromBrowser.topic, watchToken: fromBrowser.watchToken });

      await http(cluster.phone, 'POST', `/v1/qr/${fromPhone.id}/scan`, { headers: auth });
      expect(await http(cluster.phone, 'POST', `/v1/qr/${fromPhone.id}/cancel`, { headers: auth })).toMatchObject({
        status: 200,
        body: { state: 'cancelled' },
      });
      await pushes.waitFor((s) => s.topic === fromPhone.topic && s.state === 'cancelled');

      // The phone watches the flow it scanned without the watch token, and sees the browser cancel.
      await phoneWs.request('qr.scan', { id: fromBrowser.id });
      expect(await phoneWs.request('subscribe', { topic: fromBrowser.topic })).toMatchObject({ ok: true, state: { state: 'scanned' } });
      const cancel = await http(cluster.browser, 'DELETE', `/v1/qr/${fromBrowser.id}`, { headers: { 'watch-token': fromBrowser.watchToken } });
      expect(cancel).toMatchObject({ status: 200, body: { state: 'cancelled', version: 3 } });
      await pushes.waitFor((s) => s.topic === fromBrowser.topic && s.state === 'cancelled');
      await phoneWs.states.waitForState('cancelled');
    } finally {
      browser.close();
      phoneWs.close();
    }
  });
});

describe.each(MODES)('QR expiry ($name)', (mode) => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster(mode, { QR_TTL_SECONDS: '1', TOMBSTONE_SECONDS: '30' });
  });
  afterAll(() => cluster?.stop());

  it('pushes expired to a subscriber at expiresAt without any request', async () => {
    const qr = await createQr(cluster.browser);
    const browser = await connectSocketIo(cluster.phone); // subscribe on the other node when there are two
    const ws = await WsClient.connect(cluster.browser);
    try {
      const pushes = recordSocketIo(browser);
      await emitAck(browser, 'subscribe', { topic: qr.topic, watchToken: qr.watchToken });
      await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken });
      const expired = await pushes.waitForState('expired', 10_000);
      expect(expired.version).toBe(2);
      expect(Date.parse(expired.expiresAt)).toBeLessThanOrEqual(Date.now());
      await ws.states.waitForState('expired', 10_000);
      // A late reader sees the tombstone, not a 404.
      const late = await http(cluster.browser, 'GET', `/v1/flows/${qr.topic}`, { headers: { 'watch-token': qr.watchToken } });
      expect(late).toMatchObject({ status: 200, body: { state: 'expired', version: 2 } });
    } finally {
      browser.close();
      ws.close();
    }
  });
});
