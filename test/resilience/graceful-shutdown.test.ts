/**
 * SIGTERM on a node that holds 100 long-polls and 100 sockets (50 raw Socket.IO clients, 50 SDK
 * clients given both nodes' URLs) plus 20 plain WebSocket clients, while an async login runs in
 * its queue worker. Every long-poll is answered with the current state, every Socket.IO client
 * gets the `reconnect` hint before its connection closes, every WebSocket is closed with 1012,
 * the running job finishes, and the process exits 0 well before SHUTDOWN_TIMEOUT_SECONDS. Nothing
 * is lost: the flows are all on the other node, the SDK clients move there by themselves, the
 * raw clients resubscribe there, queued jobs run on a worker started afterwards, and every flow
 * confirmed afterwards is delivered.
 */
import { afterAll, expect, it } from 'vitest';
import type { Handoff } from '@handoff/client-sdk';
import { ANA, SEED_USERS, login } from '../harness/cluster.js';
import { WsClient } from '../harness/clients.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { sampleSum, scrape } from '../harness/prometheus.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';
import { SocketBrowser, StatusLog, phoneConfirms, request, retrying, sdkQrWatchers, waitUntil, type CreatedFlow } from '../harness/resilience.js';

const LONG_POLLS = 100;
const SOCKET_IO = 50;
const SDK = 50;
const WEBSOCKETS = 20;
const SHUTDOWN_TIMEOUT_SECONDS = 10;

let redis: RedisHandle | null = null;
const nodes: ServerProcess[] = [];
const sdks: Handoff[] = [];
const browsers: SocketBrowser[] = [];
const wsClients: WsClient[] = [];

afterAll(async () => {
  for (const b of browsers) b.close();
  for (const s of sdks) s.close();
  for (const w of wsClients) w.close();
  await Promise.all(nodes.map((n) => n.kill()));
  await redis?.stop();
});

it('SIGTERM: long-polls answered, sockets hinted and closed, the running job finished, exit 0 in time, nothing lost', { timeout: 120_000 }, async () => {
  redis = await startRedis();
  const env = { REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('shutdown'), SEED_USERS, QR_TTL_SECONDS: '300' };
  // Node A runs the queue workers, one login at a time, with a slow bcrypt so a job is running at
  // SIGTERM; it seeds the users first (their hashes carry that cost). Node B serves HTTP only.
  const a = await startServerProcess({ ...env, SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_SECONDS), BCRYPT_COST: '11', LOGIN_CONCURRENCY: '1' });
  const b = await startServerProcess({ ...env, ROLE: 'api' });
  nodes.push(a, b);
  const log = new StatusLog();
  const jwt = await login(b.url, ANA);

  // --- what node A holds at SIGTERM ---------------------------------------------------------------
  const create = async () => (await request(log, 'POST /v1/qr', b.url, 'POST', '/v1/qr')).body as CreatedFlow;
  const pollFlows = await Promise.all(Array.from({ length: LONG_POLLS }, create));
  const polls = pollFlows.map((f) =>
    request(log, 'GET /v1/flows/:topic (long-poll)', a.url, 'GET', `/v1/flows/${f.topic}?after=1&wait=30`, {
      headers: { 'watch-token': f.watchToken },
    }),
  );
  await Promise.all(
    Array.from({ length: SOCKET_IO }, async () => {
      const browser = new SocketBrowser(a.url, await create());
      browsers.push(browser);
      await browser.subscribed;
    }),
  );
  const sdkOpts = { url: [a.url, b.url], longPoll: false, minReconnectDelay: 100, maxReconnectDelay: 1_000 };
  const { flows: sdkFlows, sessions } = await sdkQrWatchers(SDK, sdkOpts, sdks);
  const wsFlows = await Promise.all(Array.from({ length: WEBSOCKETS }, create));
  await Promise.all(
    wsFlows.map(async (f) => {
      const ws = await WsClient.connect(a.url);
      wsClients.push(ws);
      expect(await ws.request('subscribe', { topic: f.topic, watchToken: f.watchToken })).toMatchObject({ ok: true });
    }),
  );
  expect(sdks.every((c) => c.url === a.url)).toBe(true);
  // The long-polls are held by A (they wait for a version above 1).
  await waitUntil(async () => sampleSum(await scrape(a.url), 'handoff_connections', { transport: 'long-poll' }) === LONG_POLLS, 'the held long-polls');

  // Three async logins; the first one is running in A's worker when SIGTERM comes.
  const logins = await Promise.all(
    [1, 2, 3].map(async () => {
      const res = await request(log, 'POST /v1/sessions (async)', b.url, 'POST', '/v1/sessions', {
        body: { email: ANA.email, password: ANA.password },
        headers: { prefer: 'respond-async' },
      });
      expect(res.status).toBe(202);
      return res.body as CreatedFlow;
    }),
  );
  const readLogin = async (f: CreatedFlow) =>
    (await request(log, 'GET /v1/flows/:topic', b.url, 'GET', `/v1/flows/${f.topic}`, { headers: { 'watch-token': f.watchToken } })).body;
  const running = await waitUntil(
    async () => {
      for (const f of logins) if ((await readLogin(f)).state === 'processing') return f;
      return null;
    },
    'a login job to be running',
    20_000,
    10,
  );

  // --- SIGTERM -----------------------------------------------------------------------------------
  const wsCloses = wsClients.map((w) => w.closed);
  const started = Date.now();
  const code = await a.stop(30_000);
  const shutdownMs = Date.now() - started;
  expect(code, a.output().slice(-2000)).toBe(0);
  expect(shutdownMs).toBeLessThan(SHUTDOWN_TIMEOUT_SECONDS * 1000);
  expect(a.output()).toContain('"msg":"shutdown complete"');
  expect(a.output()).not.toMatch(/shutdown timed out|unhandled rejection|"msg":"request failed"/);

  // The job that was running when SIGTERM came was finished by A before it exited.
  expect((await readLogin(running)).state).toBe('succeeded');

  // Every long-poll got an answer: the current state (nothing changed: pending, version 1).
  const answers = await Promise.all(polls);
  for (const res of answers) expect(res).toMatchObject({ status: 200, body: { state: 'pending', version: 1 } });

  // Every Socket.IO client got the hint, then its transport closed (so a stock client reconnects).
  for (const br of browsers) {
    expect(br.hints, br.flow.topic).toBe(1);
    expect(br.disconnects[0]).toBe('transport close');
  }
  // Every WebSocket was closed with 1012 "service restart".
  for (const closed of await Promise.all(wsCloses)) expect(closed).toEqual({ code: 1012, reason: 'service restart' });

  // --- nothing is lost -----------------------------------------------------------------------------
  // The SDK clients moved to B by themselves (the hint rotated their URL list) and resubscribed.
  await waitUntil(
    () => sdks.every((c) => c.url === b.url && c.state === 'connected') && sdkFlows.every((qr) => qr.subscriptionState === 'subscribed'),
    'the SDK clients to be subscribed on node B',
  );
  // The raw clients reconnect through "the load balancer" (here: to B) and get their flows back.
  for (const br of browsers) br.moveTo(b.url);
  await Promise.all(browsers.map((br) => br.subscribed));
  for (const br of browsers) expect(br.current).toMatchObject({ state: 'pending', version: 1 });
  // The queued logins were not lost: a worker started now runs them.
  const worker = await startServerProcess({ ...env, ROLE: 'worker' });
  nodes.push(worker);
  await waitUntil(async () => {
    for (const f of logins) if ((await readLogin(f)).state !== 'succeeded') return false;
    return true;
  }, 'every queued login to succeed', 30_000, 100);

  // Every flow confirmed now (on B) is delivered.
  const all = [...pollFlows, ...browsers.map((br) => br.flow), ...sdkFlows.map((q) => ({ id: q.id, topic: q.topic, watchToken: '' })), ...wsFlows];
  await Promise.all(all.map((f) => phoneConfirms(log, b.url, f.id, jwt)));
  await Promise.all(browsers.map((br) => br.final));
  for (const br of browsers) expect(br.finals.map((s) => s.state)).toEqual(['redeemed']);
  const outcomes = await Promise.all(sessions);
  expect(outcomes.filter((o) => o instanceof Error).map(String)).toEqual([]);
  for (const f of pollFlows) {
    const res = await retrying(log, 'GET /v1/flows/:topic', b.url, 'GET', `/v1/flows/${f.topic}`, { headers: { 'watch-token': f.watchToken } });
    expect(res.body.state).toBe('confirmed');
  }
  expect([...log.statuses()].filter((s) => s >= 500)).toEqual([]);
  const serverMs = Number(/"ms":(\d+),"msg":"shutdown complete"/.exec(a.output())?.[1]);
  console.log(`[graceful-shutdown] ${JSON.stringify({ sigterm_to_exit_ms: shutdownMs, drain_ms_logged: serverMs, statuses: log.summary() })}`);
});
