/**
 * Redis dies (SIGKILL) for 5 seconds in the middle of 200 QR logins and comes back from its AOF.
 * Two real nodes: the browsers watch on node A (100 raw Socket.IO clients, 100 SDK clients), the
 * phones confirm over HTTP on node B and keep retrying through the outage. Every browser must end
 * with exactly one final state (redeemed), nothing may hang, no request may answer 500, and the
 * nodes must answer 503 quickly while Redis is gone and resume by themselves afterwards: pushes
 * (the adapter's subscriber re-subscribes), long-polls, socket acks, the job queue.
 */
import { afterAll, expect, it } from 'vitest';
import type { Handoff } from '@handoff/client-sdk';
import { ANA, SEED_USERS, login } from '../harness/cluster.js';
import { WsClient, connectSocketIo } from '../harness/clients.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';
import { sampleSum, scrape } from '../harness/prometheus.js';
import { SocketBrowser, StatusLog, delay, phoneConfirms, request, retrying, sdkQrWatchers, waitUntil, type CreatedFlow } from '../harness/resilience.js';

const FLOWS = 200;
const t0 = Date.now();
const step = (what: string) => process.env.RESILIENCE_DEBUG && console.log(`[redis-outage +${Date.now() - t0} ms] ${what}`);
const OUTAGE_MS = 5_000;

let redis: RedisHandle | null = null;
const nodes: ServerProcess[] = [];
const sdks: Handoff[] = [];
const browsers: SocketBrowser[] = [];

afterAll(async () => {
  for (const b of browsers) b.close();
  for (const h of sdks) h.close();
  await Promise.all(nodes.map((n) => n.kill()));
  await redis?.stop();
});

it('200 QR logins live through a 5 s Redis outage: 503s fast, no 500, every browser ends redeemed', { timeout: 150_000 }, async () => {
  redis = await startRedis({ appendonly: true });
  const env = {
    REDIS_URL: redis.url,
    REDIS_PREFIX: uniquePrefix('outage'),
    SEED_USERS,
    QUEUE_LOCK_MS: '2000',
    QR_TTL_SECONDS: '300',
    // Codes by SMS are configured (the endpoint is never reached: no code is asked for while Redis is up).
    SMS_WEBHOOK_URL: 'http://127.0.0.1:9/sms',
  };
  const [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  nodes.push(a, b);
  const log = new StatusLog();
  step('nodes up');
  const jwt = await login(b.url, ANA);

  // --- 200 browsers on node A: half raw Socket.IO, half the SDK ---------------------------------
  const flows: CreatedFlow[] = [];
  await Promise.all(
    Array.from({ length: FLOWS / 2 }, async () => {
      const created = await request(log, 'POST /v1/qr', a.url, 'POST', '/v1/qr');
      expect(created.status).toBe(201);
      const browser = new SocketBrowser(a.url, created.body);
      browsers.push(browser);
      flows.push(created.body);
      await browser.subscribed;
    }),
  );
  const sdkOpts = { url: a.url, longPoll: false, minReconnectDelay: 100, maxReconnectDelay: 1000, redeemRetries: 20 };
  const { flows: sdkFlows, sessions } = await sdkQrWatchers(FLOWS / 2, sdkOpts, sdks, 90_000);
  flows.push(...sdkFlows.map((qr) => ({ id: qr.id, topic: qr.topic, watchToken: '' })));
  expect(browsers.length + sdkFlows.length).toBe(FLOWS);
  step('200 browsers subscribed');

  // Probes held across the outage: a WebSocket client, a Socket.IO client, and a held long-poll.
  const ws = await WsClient.connect(a.url);
  const probeSocket = await connectSocketIo(a.url);
  const probeFlow = (await request(log, 'POST /v1/qr', a.url, 'POST', '/v1/qr')).body as CreatedFlow;

  // --- readiness watchers: when does each node notice, when is it back ---------------------------
  const readiness = { killedAt: 0, restartedAt: 0, first503: new Map<string, number>(), backAt: new Map<string, number>() };
  let watching = true;
  const watchers = [a, b].map(async (node) => {
    while (watching) {
      let status = 0;
      try {
        status = (await request(log, 'GET /readyz', node.url, 'GET', '/readyz', { timeoutMs: 5_000 })).status;
      } catch {
        status = 0;
      }
      if (readiness.killedAt && status === 503 && !readiness.first503.has(node.url)) readiness.first503.set(node.url, Date.now());
      if (readiness.restartedAt && status === 200 && !readiness.backAt.has(node.url)) readiness.backAt.set(node.url, Date.now());
      await delay(25);
    }
  });

  // --- the phones: spread over ~4 s, each retrying through 503s on node B ---------------------------
  const phones = flows.map((flow) => delay(Math.random() * 4_000).then(() => phoneConfirms(log, b.url, flow.id, jwt, Math.random() * 300)));
  // Settled and asserted below; until then a failed phone is not an unhandled rejection.
  const phonesSettled = Promise.allSettled(phones);

  // --- the outage ----------------------------------------------------------------------------------
  await delay(1_000);
  // A long-poll held when Redis dies must still answer (with a state or 503) by its wait.
  const heldPoll = request(log, 'GET /v1/flows/:topic (held)', a.url, 'GET', `/v1/flows/${probeFlow.topic}?after=1&wait=3`, {
    headers: { 'watch-token': probeFlow.watchToken },
  });
  await redis.kill('SIGKILL');
  readiness.killedAt = Date.now();
  step('redis killed');
  await waitUntil(() => readiness.first503.size === 2, 'both nodes to fail readiness', 5_000, 10);
  step('both not ready');

  // Everything that needs the store answers 503 `unavailable` quickly while Redis is gone.
  const outage: Array<[string, Promise<{ status?: number; ok?: boolean; code?: string; ms: number }>]> = [
    ['create', request(log, 'POST /v1/qr', a.url, 'POST', '/v1/qr')],
    ['read', request(log, 'GET /v1/flows/:topic', a.url, 'GET', `/v1/flows/${probeFlow.topic}`, { headers: { 'watch-token': probeFlow.watchToken } })],
    ['long-poll', request(log, 'GET /v1/flows/:topic (long-poll)', a.url, 'GET', `/v1/flows/${probeFlow.topic}?after=1&wait=20`, { headers: { 'watch-token': probeFlow.watchToken } })],
    ['me (JWT)', request(log, 'GET /v1/me', a.url, 'GET', '/v1/me', { headers: { authorization: `Bearer ${jwt}` } })],
    ['login', request(log, 'POST /v1/sessions', a.url, 'POST', '/v1/sessions', { body: { email: ANA.email, password: ANA.password } })],
    ['async login', request(log, 'POST /v1/sessions (async)', a.url, 'POST', '/v1/sessions', { body: { email: ANA.email, password: ANA.password }, headers: { prefer: 'respond-async' } })],
    ['code', request(log, 'POST /v1/verification-codes', a.url, 'POST', '/v1/verification-codes', { body: { channel: 'sms', to: '+15551234567', purpose: 'login' } })],
    ['socket ack', timed(() => (probeSocket as any).timeout(5_000).emitWithAck('subscribe', { topic: probeFlow.topic, watchToken: probeFlow.watchToken }))],
    ['ws reply', timed(() => ws.request('subscribe', { topic: probeFlow.topic, watchToken: probeFlow.watchToken }))],
    // The JWT-authenticated handshakes read the user store too.
    [
      'socket.io handshake (JWT)',
      timed(() =>
        connectSocketIo(a.url, { token: jwt }).then(
          (s) => (s.close(), { ok: true }),
          (err: Error) => ({ ok: false, error: { code: err.message } }),
        ),
      ),
    ],
    [
      'websocket upgrade (JWT)',
      timed(() =>
        WsClient.connect(a.url, { authorization: `Bearer ${jwt}` }).then(
          (c) => (c.close(), { ok: true }),
          (err: { status?: number }) => ({ ok: false, error: { code: err.status === 503 ? 'unavailable' : String(err.status) } }),
        ),
      ),
    ],
  ];
  const outageAnswers: Record<string, unknown> = {};
  for (const [name, pending] of outage) {
    const res: any = await pending;
    outageAnswers[name] = { status: res.status, ok: res.ok, code: res.body?.error?.code ?? res.error?.code, ms: Math.round(res.ms) };
    if ('status' in res && res.status !== undefined) {
      expect(res.status, name).toBe(503);
      expect(res.body.error.code, name).toBe('unavailable');
    } else {
      expect(res.ok, name).toBe(false);
      expect(res.error.code, name).toBe('unavailable');
    }
    expect(res.ms, `${name} must answer quickly`).toBeLessThan(3_000);
  }
  const held = await heldPoll;
  step('outage probes answered');
  expect([200, 503], 'the held long-poll answers').toContain(held.status);
  expect(held.ms).toBeLessThan(6_000);

  await delay(Math.max(0, OUTAGE_MS - (Date.now() - readiness.killedAt))); // the scenario: Redis stays down 5 s
  await redis.restart();
  readiness.restartedAt = Date.now();
  step('redis restarted');
  await waitUntil(() => readiness.backAt.size === 2, 'both nodes to be ready again', 20_000, 10);
  step('both ready');

  // --- everything resumes by itself -----------------------------------------------------------------
  // Node A's adapter subscriber is back: it re-subscribed (ioredis autoResubscribe) and A re-pushed
  // the current state of its subscribed topics (the resync, for transitions published meanwhile).
  await waitUntil(async () => sampleSum(await scrape(a.url), 'handoff_resyncs_total', { outcome: 'completed' }) >= 1, 'the resync on node A', 20_000, 50);
  step('resync done');
  // From now on pushes can only come through the re-made subscription: a long-poll started now on
  // A is woken by a transition committed on B.
  const after = (await retrying(log, 'POST /v1/qr', a.url, 'POST', '/v1/qr')).body as CreatedFlow;
  const heldPolls = async () => sampleSum(await scrape(a.url), 'handoff_connections', { transport: 'long-poll' });
  const heldBefore = await heldPolls();
  const poll = request(log, 'GET /v1/flows/:topic (long-poll)', a.url, 'GET', `/v1/flows/${after.topic}?after=1&wait=25`, {
    headers: { 'watch-token': after.watchToken },
  });
  // Scan only once A holds the poll: otherwise it would answer version 2 without waiting.
  await waitUntil(async () => (await heldPolls()) > heldBefore, 'the long-poll held on node A', 10_000, 20);
  await retrying(log, 'POST /v1/qr/:id/scan', b.url, 'POST', `/v1/qr/${after.id}/scan`, { headers: { authorization: `Bearer ${jwt}` } });
  const woken = await poll;
  expect(woken).toMatchObject({ status: 200, body: { state: 'scanned', version: 2 } });
  expect(woken.ms).toBeLessThan(10_000);
  step('long-poll woken');

  // The job queue runs again: an async login queued now succeeds.
  const queued = await retrying(log, 'POST /v1/sessions (async)', b.url, 'POST', '/v1/sessions', {
    body: { email: ANA.email, password: ANA.password },
    headers: { prefer: 'respond-async' },
  });
  expect(queued.status).toBe(202);
  const loginDone = await request(log, 'GET /v1/flows/:topic (long-poll)', b.url, 'GET', `/v1/flows/${queued.body.topic}?after=2&wait=20`, {
    headers: { 'watch-token': queued.body.watchToken },
  });
  const loginState =
    loginDone.body.state === 'succeeded'
      ? loginDone.body
      : (
          await waitUntil(async () => {
            const r = await request(log, 'GET /v1/flows/:topic', b.url, 'GET', `/v1/flows/${queued.body.topic}`, { headers: { 'watch-token': queued.body.watchToken } });
            return r.body.state === 'succeeded' ? r.body : null;
          }, 'the async login to succeed', 20_000, 200)
        );
  expect(loginState.state).toBe('succeeded');
  step('async login ok');

  // --- every phone done, every browser final (none hangs) -------------------------------------------
  const phoneResults = await phonesSettled;
  const phoneFailures = phoneResults.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
  expect(phoneFailures, JSON.stringify(log.summary())).toEqual([]);
  step('phones done');

  const finals = await Promise.race([
    Promise.all(browsers.map((br) => br.final)),
    delay(45_000).then(() => null),
  ]);
  const stuck = browsers.filter((br) => br.finals.length === 0).map((br) => `${br.flow.topic}: ${br.current?.state}@${br.current?.version}`);
  expect(stuck, 'raw Socket.IO browsers without a final state').toEqual([]);
  expect(finals).not.toBeNull();
  // Every browser ends redeemed, with its session, with one exception the contract makes on
  // purpose: a redeem committed in the instant Redis died loses its answer (`unavailable`), and
  // its retry then meets `already_redeemed` (a session is handed out once, never twice).
  let lostAnswers = 0;
  for (const br of browsers) {
    expect(br.finals.map((s) => s.state)).toEqual(['redeemed']);
    if (br.session) continue;
    expect(br.ackErrors.slice(-2), br.flow.topic).toEqual(['unavailable', 'already_redeemed']);
    lostAnswers++;
  }
  const sdkOutcomes = await Promise.all(sessions);
  for (const outcome of sdkOutcomes) {
    if (!(outcome instanceof Error)) continue;
    expect((outcome as { code?: string }).code, String(outcome)).toBe('already_redeemed');
    lostAnswers++;
  }
  for (const qr of sdkFlows) expect(qr.state.state).toBe('redeemed');
  expect(lostAnswers, 'redeems whose answer Redis took down with it').toBeLessThanOrEqual(10);

  watching = false;
  await Promise.all(watchers);

  // --- no 500 anywhere; the nodes never went down -------------------------------------------------------
  const statuses = [...log.statuses()].sort();
  expect(statuses.filter((s) => s >= 500 && s !== 503), JSON.stringify(log.summary())).toEqual([]);
  for (const s of statuses) expect([200, 201, 202, 409, 503], `status ${s}: ${JSON.stringify(log.summary())}`).toContain(s);
  expect(log.networkErrors.size, 'requests without an answer').toBe(0);
  // Every 503 came quickly (the held long-poll answers at its 3 s wait by design, checked above).
  const slow503 = [...log.slowestByLabel].filter(([key, ms]) => key.endsWith(' 503') && !key.includes('(held)') && ms >= 3_000);
  expect(slow503, 'slow 503 answers').toEqual([]);
  for (const node of [a, b]) {
    expect(node.child.exitCode, 'the node stayed up').toBeNull();
    expect(node.output()).not.toMatch(/unhandled rejection|"msg":"request failed"/);
  }
  // The socket connections stayed open through the outage (no disconnect at all).
  expect(browsers.flatMap((br) => br.disconnects)).toEqual([]);

  // The metrics saw it: Redis errors counted, the subscriber's resync ran on the node with the browsers.
  const metrics = await scrape(a.url);
  expect(sampleSum(metrics, 'handoff_redis_errors_total', { connection: 'command' })).toBeGreaterThan(0);
  expect(sampleSum(metrics, 'handoff_resyncs_total', { outcome: 'completed' })).toBeGreaterThanOrEqual(1);
  expect(sampleSum(metrics, 'handoff_redis_connected', { connection: 'sub' })).toBe(1);

  const figures = {
    time_to_503_ms: Object.fromEntries([...readiness.first503].map(([u, t]) => [u, t - readiness.killedAt])),
    time_to_ready_after_restart_ms: Object.fromEntries([...readiness.backAt].map(([u, t]) => [u, t - readiness.restartedAt])),
    slowest_503_ms: Math.round(Math.max(0, ...[...log.slowestByLabel].filter(([k]) => k.endsWith(' 503') && !k.includes('(held)')).map(([, ms]) => ms))),
    redeem_answers_lost: lostAnswers,
    outage_answers: outageAnswers,
    statuses: log.summary(),
  };
  console.log(`[redis-outage] ${JSON.stringify(figures)}`);
  ws.close();
  probeSocket.close();
});

/** Time a socket round trip; the answer with `ms`. */
async function timed<T extends object>(fn: () => Promise<T>): Promise<T & { ms: number }> {
  const started = performance.now();
  const res = await fn();
  return { ...res, ms: performance.now() - started };
}
