/**
 * Push-to-approve across real processes: the browser on node A, the phone on node B (one node in
 * the embedded and one-node modes), each transport. The request created on A reaches the phone's
 * user channel on B through the fan-out; the phone's answer reaches the browser on A.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANA, BOB, MODES, login, startCluster, type Cluster } from '../harness/cluster.js';
import { WsClient, connectSocketIo, emitAck, http, recordSocketIo } from '../harness/clients.js';

/** Short enough for the expiry test to wait for it, long enough for every other scenario. */
const TTL_SECONDS = 5;
/** APPROVALS_PER_USER here: each scenario ends its own request, so a small cap never interferes. */
const CAP = 3;

describe.each(MODES)('push-to-approve across nodes ($name)', (mode) => {
  let cluster: Cluster;
  let anaToken: string;
  let bobToken: string;

  beforeAll(async () => {
    cluster = await startCluster(mode, { APPROVAL_TTL_SECONDS: String(TTL_SECONDS), EXPIRY_SWEEP_MS: '100', APPROVALS_PER_USER: String(CAP) });
    anaToken = await login(cluster.phone, ANA);
    bobToken = await login(cluster.phone, BOB);
  });
  afterAll(() => cluster?.stop());

  async function request(login: string) {
    const res = await http(cluster.browser, 'POST', '/v1/approvals', { body: { login }, headers: { 'user-agent': 'TestBrowser/1.0' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; topic: string; watchToken: string; number: number };
  }

  it('Socket.IO: the phone on B is pushed the request from A, approves with the number, the browser on A redeems', async () => {
    const phone = await connectSocketIo(cluster.phone, { token: anaToken });
    const browser = await connectSocketIo(cluster.browser);
    try {
      const pushes = recordSocketIo(phone);
      expect(await emitAck(phone, 'subscribe', { topic: 'user:me' })).toMatchObject({ ok: true, state: { topic: 'user:me' } });
      const created = await request(ANA.email);
      const states = recordSocketIo(browser);
      await emitAck(browser, 'subscribe', { topic: created.topic, watchToken: created.watchToken });
      const pushed = (await pushes.waitFor((s) => s.id === created.id)) as any;
      expect(pushed).toMatchObject({ topic: 'user:me', kind: 'approval', state: 'pending', requester: { userAgent: 'TestBrowser/1.0' } });
      expect(pushed.choices).toContain(created.number);
      expect(pushed).not.toHaveProperty('number');
      expect(await emitAck(phone, 'approval:approve', { id: created.id, number: created.number })).toMatchObject({ ok: true, state: { state: 'approved' } });
      await states.waitForState('approved');
      const redeemed = await emitAck(browser, 'redeem', { topic: created.topic, watchToken: created.watchToken });
      expect(redeemed).toMatchObject({ ok: true, session: { tokenType: 'session', user: { email: ANA.email } } });
    } finally {
      phone.close();
      browser.close();
    }
  });

  it('/v1/ws: a wrong number from the phone on B denies, and the browser on A is pushed denied', async () => {
    const phone = await WsClient.connect(cluster.phone, { authorization: `Bearer ${bobToken}` });
    const browser = await WsClient.connect(cluster.browser);
    try {
      expect(await phone.request('subscribe', { topic: 'user:me' })).toMatchObject({ ok: true });
      const created = await request(BOB.email);
      await browser.request('subscribe', { topic: created.topic, watchToken: created.watchToken });
      const pushed = (await phone.states.waitFor((s) => s.id === created.id)) as any;
      const wrong = pushed.choices.find((c: number) => c !== created.number);
      expect(await phone.request('approval.approve', { id: created.id, number: wrong })).toMatchObject({ ok: false, error: { code: 'wrong_number' } });
      await browser.states.waitForState('denied');
      await phone.states.waitFor((s) => s.id === created.id && s.state === 'denied');
    } finally {
      phone.close();
      browser.close();
    }
  });

  it('HTTP only: the browser on A long-polls, the phone on B approves over HTTP, the browser redeems over HTTP', async () => {
    const created = await request(ANA.email);
    const watch = { 'watch-token': created.watchToken };
    const first = await http(cluster.browser, 'GET', `/v1/flows/${created.topic}`, { headers: watch });
    expect(first.body).toMatchObject({ state: 'pending', version: 1 });
    const waiting = http(cluster.browser, 'GET', `/v1/flows/${created.topic}?after=1&wait=10`, { headers: watch });
    const approved = await http(cluster.phone, 'POST', `/v1/approvals/${created.id}/approve`, {
      body: { number: created.number },
      headers: { authorization: `Bearer ${anaToken}` },
    });
    expect(approved).toMatchObject({ status: 200, body: { state: 'approved' } });
    expect((await waiting).body).toMatchObject({ topic: created.topic, state: 'approved', version: 2 });
    const session = await http(cluster.browser, 'POST', `/v1/flows/${created.topic}/session`, { headers: watch });
    expect(session).toMatchObject({ status: 200, body: { user: { email: ANA.email } } });
  });

  it('deny over Socket.IO on B: the browser on A is pushed denied and cannot redeem', async () => {
    const phone = await connectSocketIo(cluster.phone, { token: anaToken });
    const browser = await WsClient.connect(cluster.browser);
    try {
      const pushes = recordSocketIo(phone);
      await emitAck(phone, 'subscribe', { topic: 'user:me' });
      const created = await request(ANA.email);
      await browser.request('subscribe', { topic: created.topic, watchToken: created.watchToken });
      await pushes.waitFor((s) => s.id === created.id);
      expect(await emitAck(phone, 'approval:deny', { id: created.id })).toMatchObject({ ok: true, state: { state: 'denied' } });
      await browser.states.waitForState('denied');
      expect(await browser.request('redeem', { topic: created.topic, watchToken: created.watchToken })).toMatchObject({ ok: false });
    } finally {
      phone.close();
      browser.close();
    }
  });

  it('the browser on A cancels with its watch token: the phone on B is pushed cancelled', async () => {
    const phone = await WsClient.connect(cluster.phone, { authorization: `Bearer ${anaToken}` });
    try {
      await phone.request('subscribe', { topic: 'user:me' });
      const created = await request(ANA.email);
      await phone.states.waitFor((s) => s.id === created.id && s.state === 'pending');
      const res = await http(cluster.browser, 'DELETE', `/v1/approvals/${created.id}`, { headers: { 'watch-token': created.watchToken } });
      expect(res).toMatchObject({ status: 200, body: { state: 'cancelled' } });
      await phone.states.waitFor((s) => s.id === created.id && s.state === 'cancelled');
    } finally {
      phone.close();
    }
  });

  it('two phones of the same user, on A and on B: the first answer wins, the other is pushed the outcome and its answer is 409', async () => {
    const onA = await WsClient.connect(cluster.browser, { authorization: `Bearer ${anaToken}` });
    const onB = await connectSocketIo(cluster.phone, { token: anaToken });
    try {
      const pushesB = recordSocketIo(onB);
      await onA.request('subscribe', { topic: 'user:me' });
      await emitAck(onB, 'subscribe', { topic: 'user:me' });
      const created = await request(ANA.email);
      await onA.states.waitFor((s) => s.id === created.id);
      await pushesB.waitFor((s) => s.id === created.id);
      expect(await onA.request('approval.approve', { id: created.id, number: created.number })).toMatchObject({ ok: true, state: { state: 'approved' } });
      await pushesB.waitFor((s) => s.id === created.id && s.state === 'approved');
      expect(await emitAck(onB, 'approval:deny', { id: created.id })).toMatchObject({ ok: false, error: { code: 'invalid_transition' } });
    } finally {
      onA.close();
      onB.close();
    }
  });

  it('the per-login cap holds across nodes: requests spread over A and B, the one past APPROVALS_PER_USER is 429', async () => {
    const login = `nobody-${Math.random().toString(36).slice(2)}@example.com`; // unknown logins are capped alike
    for (let i = 0; i < CAP; i++) {
      const base = i % 2 === 0 ? cluster.browser : cluster.phone;
      const res = await http(base, 'POST', '/v1/approvals', { body: { login }, headers: { 'user-agent': 'TestBrowser/1.0' } });
      expect(res.status).toBe(201);
    }
    const over = await http(cluster.phone, 'POST', '/v1/approvals', { body: { login }, headers: { 'user-agent': 'TestBrowser/1.0' } });
    expect(over).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
  });

  it('a phone subscribing on B after the request was created on A finds it in its snapshot', async () => {
    const created = await request(ANA.email);
    const phone = await WsClient.connect(cluster.phone, { authorization: `Bearer ${anaToken}` });
    try {
      const reply = await phone.request('subscribe', { topic: 'user:me' });
      expect(reply.state.approvals.map((a: { id: string }) => a.id)).toContain(created.id);
      expect(await phone.request('approval.deny', { id: created.id })).toMatchObject({ ok: true, state: { state: 'denied' } });
    } finally {
      phone.close();
    }
  });

  it('an unanswered request expires: the browser on A and the phone on B are pushed expired', async () => {
    const phone = await connectSocketIo(cluster.phone, { token: bobToken });
    const browser = await connectSocketIo(cluster.browser);
    try {
      const pushes = recordSocketIo(phone);
      await emitAck(phone, 'subscribe', { topic: 'user:me' });
      const created = await request(BOB.email);
      const states = recordSocketIo(browser);
      await emitAck(browser, 'subscribe', { topic: created.topic, watchToken: created.watchToken });
      await states.waitForState('expired', (TTL_SECONDS + 5) * 1000);
      await pushes.waitFor((s) => s.id === created.id && s.state === 'expired', 5000);
    } finally {
      phone.close();
      browser.close();
    }
  }, 20_000);
});
