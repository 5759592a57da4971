/**
 * A transition whose answer was lost still reaches the subscribers. In a Redis failover (or on a
 * dropped connection) a commit can land while its answer, and the publish that follows it, are
 * lost: the caller retries and is told 409 with the current state. That 409 publishes the current
 * state again, so a browser watching the flow is pushed it (the version rule drops it where it was
 * seen). Here the lost commit is made directly in the store, which publishes nothing, exactly as
 * if the node had lost the answer; embedded, and two nodes on one Redis (browser on A, phone on B).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANA } from '../harness/cluster.js';
import { WsClient, http } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, useRedisServer, type InProcessServer } from '../harness/in-process.js';
import { parseSeedUsers, seedUsers } from '../../server/src/users/seed-users.js';

const redis = useRedisServer();

describe.each(STORE_MODES)('lost answers ($name)', (mode) => {
  let a: InProcessServer;
  let b: InProcessServer;
  let ws: WsClient;
  let phone: { authorization: string };

  beforeAll(async () => {
    const config = testConfig(mode, redis, 'lost-answers');
    a = await startInProcess(config);
    b = mode.redis ? await startInProcess(config) : a;
    await seedUsers(a.server.handoff.users, parseSeedUsers(`${ANA.email}:${ANA.password}:${ANA.displayName}`));
    const res = await http(b.base, 'POST', '/v1/sessions', { body: { email: ANA.email, password: ANA.password } });
    phone = { authorization: `Bearer ${res.body.token}` };
    ws = await WsClient.connect(a.base);
  });
  afterAll(async () => {
    ws?.socket.close();
    if (b !== a) await b?.close();
    await a?.close();
  });

  /** A QR flow created on A, watched over /v1/ws on A, scanned by the phone on B. */
  async function scannedFlow() {
    const created = await http(a.base, 'POST', '/v1/qr', { headers: { 'user-agent': 'TestBrowser/1.0' } });
    expect(created.status).toBe(201);
    const qr = created.body as { id: string; topic: string; watchToken: string };
    expect((await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken })).ok).toBe(true);
    expect((await http(b.base, 'POST', `/v1/qr/${qr.id}/scan`, { headers: phone })).status).toBe(200);
    await ws.states.waitFor((s) => s.topic === qr.topic && s.state === 'scanned');
    return qr;
  }

  /** Commit `to` in the store itself: no publish, as when the node lost the answer of its commit. */
  async function commitSilently(id: string, to: 'confirmed' | 'redeemed', from: string[]) {
    const flows = b.server.handoff.backend.flows;
    const result = await flows.transition({ kind: 'qr', id, to, from: from as never, now: Date.now(), tombstoneMs: 60_000 });
    expect(result.ok).toBe(true);
  }

  it('a confirm retried after its answer was lost: the 409 pushes `confirmed` to the browser', async () => {
    const qr = await scannedFlow();
    await commitSilently(qr.id, 'confirmed', ['scanned']);
    const retried = await http(b.base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: phone });
    expect(retried.status).toBe(409);
    expect(retried.body.state.state).toBe('confirmed');
    const pushed = await ws.states.waitFor((s) => s.topic === qr.topic && s.state === 'confirmed');
    expect(pushed.version).toBe(retried.body.state.version);
  });

  it('a redeem retried after its answer was lost: `already_redeemed`, and `redeemed` is pushed', async () => {
    const qr = await scannedFlow();
    expect((await http(b.base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: phone })).status).toBe(200);
    await ws.states.waitFor((s) => s.topic === qr.topic && s.state === 'confirmed');
    await commitSilently(qr.id, 'redeemed', ['confirmed']);
    const reply = await ws.request('redeem', { topic: qr.topic, watchToken: qr.watchToken });
    expect(reply.ok).toBe(false);
    expect(reply.error.code).toBe('already_redeemed');
    await ws.states.waitFor((s) => s.topic === qr.topic && s.state === 'redeemed');
  });

});
