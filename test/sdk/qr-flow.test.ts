/**
 * The QR login through the SDK, in Node, against real server processes: a browser-side Handoff
 * and a phone-side Handoff (token from a password login), embedded and across two Redis nodes
 * (browser on node A, phone on node B).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { HandoffError } from '@handoff/client-sdk';
import { liveResources } from '../../client-sdk/src/scope.js';
import { ANA, MODES, login, startCluster, type Cluster } from '../harness/cluster.js';
import { http } from '../harness/clients.js';
import { Clients, recordStates, recordTransport, rejectionOf, stateReached, subscribed } from './helpers.js';

const SDK_MODES = MODES.filter((m) => m.name === 'embedded' || m.name === 'redis, two nodes');

describe.each(SDK_MODES)('QR login through the SDK ($name)', (mode) => {
  let cluster: Cluster;
  let appToken: string;
  const clients = new Clients();

  beforeAll(async () => {
    cluster = await startCluster(mode);
    appToken = await login(cluster.phone, ANA);
  });
  afterEach(() => clients.closeAll());
  afterAll(() => cluster?.stop());

  it('browser follows pending → scanned → confirmed → redeemed while the phone acts over HTTP', async () => {
    const handoff = clients.make({ url: cluster.browser });
    const app = clients.make({ url: cluster.phone, token: appToken });
    const transport = recordTransport(handoff);

    const qr = await handoff.qrLogin();
    expect(qr.imageUrl).toBe(`${cluster.browser}/v1/qr/${qr.id}/image.svg`);
    expect(qr.state).toMatchObject({ state: 'pending', version: 1, topic: `qr:${qr.id}` });
    const states = recordStates(qr);
    await subscribed(qr);
    expect(handoff.state).toBe('connected');
    expect(handoff.transport).toBe('websocket');

    const info = await app.scan(qr.id);
    expect(app.state).toBe('disconnected'); // nothing pinned the phone's socket: HTTP
    expect(info.state).toMatchObject({ state: 'scanned', version: 2 });
    expect(info.requester).toMatchObject({ userAgent: 'TestBrowser/1.0', ip: expect.any(String), createdAt: expect.any(String) });
    expect((await stateReached(qr, 'scanned')).scannedBy).toMatchObject({ displayName: 'Ana' });

    await app.confirm(qr.id);
    const session = await qr.session({ timeout: 15_000 });
    expect(session).toMatchObject({ token: expect.any(String), tokenType: 'session', user: { email: ANA.email, displayName: 'Ana' } });
    const me = await http(cluster.browser, 'GET', '/v1/me', { headers: { authorization: `Bearer ${session.token}` } });
    expect(me).toMatchObject({ status: 200, body: { email: ANA.email } });

    await stateReached(qr, 'redeemed');
    expect(states.map((s) => s.state)).toEqual(['pending', 'scanned', 'confirmed', 'redeemed']);
    expect(states.map((s) => s.version)).toEqual([1, 2, 3, 4]);
    expect(JSON.stringify(states)).not.toContain(session.token);
    // A second call shares the one outcome: the flow is redeemed once.
    await expect(qr.session()).resolves.toEqual(session);
    expect(qr.subscriptionState).toBe('unsubscribed');
    // The link was a websocket, and went idle once the flow ended.
    expect(transport.map((e) => `${e.newState}:${e.transport ?? ''}`)).toEqual(['connecting:', 'connected:websocket', 'disconnected:']);
  });

  it('the phone scans and confirms over socket acks once connected', async () => {
    const handoff = clients.make({ url: cluster.browser });
    const app = clients.make({ url: cluster.phone, token: appToken });
    await expect(app.connect({ timeout: 10_000 })).resolves.toBe('connected');
    expect(app.transport).toBe('websocket');

    const qr = await handoff.qrLogin();
    const pending = qr.session({ timeout: 15_000 });
    const info = await app.scan(qr.id);
    expect(info.requester.userAgent).toBe('TestBrowser/1.0');
    expect((await app.confirm(qr.id)).state).toBe('confirmed');
    expect((await pending).user.email).toBe(ANA.email);

    app.disconnect();
    expect(app.state).toBe('disconnected');
  });

  it('session() rejects with a typed `cancelled` error when the phone declines', async () => {
    const handoff = clients.make({ url: cluster.browser });
    const app = clients.make({ url: cluster.phone, token: appToken });
    const qr = await handoff.qrLogin();
    const outcome = rejectionOf(qr.session());
    await app.scan(qr.id);
    expect((await app.cancel(qr.id)).state).toBe('cancelled');
    const err = await outcome;
    expect(err).toBeInstanceOf(HandoffError);
    expect(err).toMatchObject({ name: 'HandoffError', code: 'cancelled', state: { state: 'cancelled', version: 3 } });
  });

  it('close() mid-flow rejects session() with `closed`, leaves no SDK timer or listener, and closes its socket', async () => {
    const app = clients.make({ url: cluster.phone, token: appToken });
    const resourcesBefore = liveResources();
    // Sockets of earlier tests' closed clients may still be going away on the server.
    await vi.waitFor(async () => expect(await serverSockets(cluster.browser)).toBe(0), { timeout: 5_000, interval: 50 });
    const socketsBefore = 0;

    const handoff = clients.make({ url: cluster.browser });
    const qr = await handoff.qrLogin();
    const outcome = rejectionOf(qr.session());
    await subscribed(qr);
    await app.scan(qr.id);
    await stateReached(qr, 'scanned');
    expect(liveResources()).toBeGreaterThan(resourcesBefore);
    expect(await serverSockets(cluster.browser)).toBe(socketsBefore + 1);

    handoff.close();
    expect(await outcome).toMatchObject({ code: 'closed' });
    expect(handoff.state).toBe('disconnected');
    expect(qr.subscriptionState).toBe('unsubscribed');
    expect(liveResources()).toBe(resourcesBefore);
    // The server sees the socket go (a close travels; poll the server's own gauge until it shows).
    await vi.waitFor(async () => expect(await serverSockets(cluster.browser)).toBe(socketsBefore), { timeout: 5_000, interval: 50 });
  });
});

/** Socket.IO connections the server at `base` holds (its `handoff_connections` gauge). */
async function serverSockets(base: string): Promise<number> {
  const res = await fetch(`${base}/metrics`);
  const m = /^handoff_connections\{[^}]*transport="socket\.io"[^}]*\} (\d+)/m.exec(await res.text());
  return m ? Number(m[1]) : 0;
}
