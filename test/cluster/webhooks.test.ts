/**
 * Webhooks end to end (issue #3): real Handoff processes deliver signed Standard Webhooks to real
 * local receivers — in embedded mode, in Redis mode, and across two nodes (the commit happens on
 * whichever node won the compare-and-set; the delivery on whichever worker took the job).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANA, MODES, createQr, login, startCluster, type Cluster } from '../harness/cluster.js';
import { http } from '../harness/clients.js';
import { startWebhookReceiver, type Delivery, type WebhookReceiver } from '../harness/webhook-receiver.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const TYPES = ['login.succeeded', 'login.failed', 'qr.confirmed', 'qr.cancelled'];

/** Sum of `handoff_webhook_deliveries_total` samples with this outcome over every node. */
async function deliveriesCounted(cluster: Cluster, outcome: string): Promise<number> {
  let sum = 0;
  for (const node of cluster.nodes) {
    const text = (await http(node.url, 'GET', '/metrics')).body as string;
    for (const line of text.split('\n')) {
      if (line.startsWith('handoff_webhook_deliveries_total{') && line.includes(`outcome="${outcome}"`)) sum += Number(line.split(' ').pop());
    }
  }
  return sum;
}

describe.each(MODES)('webhooks end to end ($name)', (mode) => {
  let cluster: Cluster;
  let healthy: WebhookReceiver;
  /** Fails the first two attempts of every message, accepts the third. */
  let flaky: WebhookReceiver;
  /** Accepts until the 410 test arms it; answers 410 Gone after. */
  let gone: WebhookReceiver;
  let goneArmed = false;
  let phoneToken: string;
  let anaId: string;
  const auth = () => ({ authorization: `Bearer ${phoneToken}` });
  /** Every watch token and session token the test saw: no delivery may contain one. */
  const secrets: string[] = [];
  /** Topics of every event raised so far. */
  const topics: string[] = [];

  beforeAll(async () => {
    healthy = await startWebhookReceiver({ secret: SECRET });
    flaky = await startWebhookReceiver({ secret: SECRET, respond: (_n, d) => (d.attempt <= 2 ? 500 : 204) });
    gone = await startWebhookReceiver({ secret: SECRET, respond: () => (goneArmed ? 410 : 204) });
    cluster = await startCluster(mode, {
      WEBHOOK_URLS: [healthy.url, flaky.url, gone.url].join(','),
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_BACKOFF_MS: '50',
    });
    phoneToken = await login(cluster.phone, ANA);
    secrets.push(phoneToken);
    anaId = (await http(cluster.phone, 'GET', '/v1/me', { headers: auth() })).body.id;
  });
  afterAll(async () => {
    await cluster?.stop();
    await Promise.all([healthy, flaky, gone].map((r) => r?.close()));
  });

  /** A QR flow the phone scanned and confirmed (browser on one node, phone on the other). */
  async function confirmedQr() {
    const qr = await createQr(cluster.browser);
    secrets.push(qr.watchToken);
    topics.push(qr.topic);
    expect(await http(cluster.phone, 'POST', `/v1/qr/${qr.id}/scan`, { headers: auth() })).toMatchObject({ status: 200 });
    expect(await http(cluster.phone, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: auth() })).toMatchObject({ status: 200 });
    return qr;
  }

  /** A QR flow the browser cancelled while pending. */
  async function cancelledQr() {
    const qr = await createQr(cluster.browser);
    secrets.push(qr.watchToken);
    topics.push(qr.topic);
    expect(await http(cluster.browser, 'DELETE', `/v1/qr/${qr.id}`, { headers: { 'watch-token': qr.watchToken } })).toMatchObject({ status: 200 });
    return qr;
  }

  it('a confirmed QR login reaches the backend as qr.confirmed, signed, with the scanner', async () => {
    const qr = await confirmedQr();
    const session = await http(cluster.browser, 'POST', `/v1/flows/${qr.topic}/session`, { headers: { 'watch-token': qr.watchToken } });
    expect(session.status).toBe(200);
    secrets.push(session.body.token);

    const d = await healthy.waitForEvent('qr.confirmed', qr.topic);
    expect(d.verified).toBe(true);
    expect(d.method).toBe('POST');
    expect(d.headers['content-type']).toBe('application/json');
    expect(d.webhookId).toMatch(/^msg_[A-Za-z0-9_-]+$/);
    expect(Number(d.headers['webhook-timestamp'])).toBeGreaterThan(Date.now() / 1000 - 30);
    expect(d.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(d.event).toEqual({
      type: 'qr.confirmed',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      data: { topic: qr.topic, id: qr.id, kind: 'qr', state: 'confirmed', version: 3, userId: anaId, account: 'builtin' },
    });
    // The same event, same id, to the other endpoints.
    expect((await gone.waitForEvent('qr.confirmed', qr.topic)).webhookId).toBe(d.webhookId);
  });

  it('a cancel reaches the backend as qr.cancelled, from the phone and from the browser', async () => {
    const scanned = await createQr(cluster.browser);
    secrets.push(scanned.watchToken);
    topics.push(scanned.topic);
    await http(cluster.phone, 'POST', `/v1/qr/${scanned.id}/scan`, { headers: auth() });
    expect(await http(cluster.phone, 'POST', `/v1/qr/${scanned.id}/cancel`, { headers: auth() })).toMatchObject({ status: 200 });
    const pending = await cancelledQr();

    const fromPhone = await healthy.waitForEvent('qr.cancelled', scanned.topic);
    expect(fromPhone.event!.data).toEqual({ topic: scanned.topic, id: scanned.id, kind: 'qr', state: 'cancelled', version: 3, userId: anaId, account: 'builtin' });
    const fromBrowser = await healthy.waitForEvent('qr.cancelled', pending.topic);
    expect(fromBrowser.event!.data).toEqual({ topic: pending.topic, id: pending.id, kind: 'qr', state: 'cancelled', version: 2 });
    expect(fromBrowser.webhookId).not.toBe(fromPhone.webhookId);
  });

  it('retries an endpoint that fails twice: three attempts, one webhook-id, accepted exactly once', async () => {
    const qr = await confirmedQr();
    const accepted = await flaky.waitForEvent('qr.confirmed', qr.topic);
    const attempts = flaky.of(qr.topic);
    expect(attempts.map((d) => [d.attempt, d.status, d.verified])).toEqual([
      [1, 500, true],
      [2, 500, true],
      [3, 204, true],
    ]);
    expect(new Set(attempts.map((d) => d.webhookId))).toEqual(new Set([accepted.webhookId]));
    expect(new Set(attempts.map((d) => d.body)).size).toBe(1);
    // Meanwhile the healthy endpoint got it once, at the first attempt (delivered on its own, so wait for it).
    await healthy.waitForEvent('qr.confirmed', qr.topic);
    expect(healthy.of(qr.topic).map((d) => [d.webhookId, d.status])).toEqual([[accepted.webhookId, 204]]);
  });

  it('disables an endpoint that answers 410 Gone: later events go to the others only', async () => {
    // Every earlier event has been accepted there; from now on it answers 410.
    await Promise.all(topics.map((t) => gone.waitFor((d) => d.event?.data.topic === t && d.status === 204)));
    goneArmed = true;
    const first = await cancelledQr();
    expect((await gone.waitFor((d) => d.event?.data.topic === first.topic)).status).toBe(410);
    // Disabled once the worker has read the 410 (counted on whichever node delivered it).
    await expect.poll(() => deliveriesCounted(cluster, 'disabled'), { timeout: 10_000 }).toBe(1);
    const goneSoFar = gone.deliveries.length;

    const second = await confirmedQr();
    await healthy.waitForEvent('qr.confirmed', second.topic);
    await flaky.waitForEvent('qr.confirmed', second.topic);
    expect(gone.of(second.topic)).toEqual([]);
    expect(gone.deliveries).toHaveLength(goneSoFar);
    expect(await deliveriesCounted(cluster, 'skipped')).toBeGreaterThanOrEqual(1);
  });

  it('sent nothing else: only the four event types, each accepted once per endpoint, no tokens', () => {
    for (const receiver of [healthy, flaky]) {
      const all: Delivery[] = receiver.deliveries;
      expect(all.every((d) => d.verified)).toBe(true);
      expect(all.every((d) => TYPES.includes(d.event!.type))).toBe(true);
      const accepted = receiver.accepted().map((d) => d.webhookId);
      expect(new Set(accepted).size).toBe(accepted.length);
      for (const d of all) for (const s of secrets) expect(d.body).not.toContain(s);
    }
    // Redeemed, scanned and expired raise nothing.
    expect(healthy.accepted().every((d) => TYPES.includes(d.event!.type))).toBe(true);
  });

  it('an async login reaches the backend as login.succeeded, a wrong password as login.failed', async () => {
    const ok = await http(cluster.browser, 'POST', '/v1/sessions', { body: { email: ANA.email, password: ANA.password }, headers: { prefer: 'respond-async' } });
    const bad = await http(cluster.browser, 'POST', '/v1/sessions', { body: { email: ANA.email, password: 'wrong-password' }, headers: { prefer: 'respond-async' } });
    expect([ok.status, bad.status]).toEqual([202, 202]);
    secrets.push(ok.body.watchToken, bad.body.watchToken);
    const succeeded = await healthy.waitForEvent('login.succeeded', ok.body.topic);
    expect(succeeded.event!.data).toMatchObject({ topic: ok.body.topic, kind: 'login', state: 'succeeded', userId: anaId });
    const failed = await healthy.waitForEvent('login.failed', bad.body.topic);
    expect(failed.event!.data).toMatchObject({ state: 'failed', error: { code: 'invalid_credentials' } });
    for (const d of [succeeded, failed]) for (const s of secrets) expect(d.body).not.toContain(s);
  });
});
