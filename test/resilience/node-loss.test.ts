/**
 * A node dies (SIGKILL) under 200 watched QR flows. Two real nodes share a Redis; 200 SDK clients,
 * each given both nodes' URLs (`url: [a, b]`, no load balancer), create and watch their flows on
 * node A; half are scanned before the kill. After A dies every client moves to B (its socket
 * connect to A fails, the client rotates to the next URL), subscribes again, takes the current
 * state, and every flow confirmed afterwards on B is delivered and redeemed.
 */
import { afterAll, expect, it } from 'vitest';
import type { Handoff, Session } from '@handoff/client-sdk';
import { ANA, SEED_USERS, login } from '../harness/cluster.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';
import { StatusLog, phoneConfirms, retrying, sdkQrWatchers, waitUntil } from '../harness/resilience.js';

const FLOWS = 200;

let redis: RedisHandle | null = null;
const nodes: ServerProcess[] = [];
const clients: Handoff[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.kill()));
  await redis?.stop();
});

it('200 SDK clients on a node killed with SIGKILL reconnect to the other node and get every confirmation', { timeout: 120_000 }, async () => {
  redis = await startRedis();
  const env = { REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('node-loss'), SEED_USERS, QR_TTL_SECONDS: '300' };
  const [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  nodes.push(a, b);
  const log = new StatusLog();
  const jwt = await login(b.url, ANA);

  // Socket only (no long-poll fallback): recovery must come from the socket moving to node B.
  const opts = { url: [a.url, b.url], longPoll: false, minReconnectDelay: 100, maxReconnectDelay: 1_000 };
  const { flows, sessions } = await sdkQrWatchers(FLOWS, opts, clients);
  expect(clients.every((c) => c.url === a.url && c.state === 'connected')).toBe(true);

  // Half the flows are scanned before the kill: after the move, the snapshot must show it.
  const scanned = flows.slice(0, FLOWS / 2);
  await Promise.all(
    scanned.map((qr) =>
      retrying(log, 'POST /v1/qr/:id/scan', b.url, 'POST', `/v1/qr/${qr.id}/scan`, { headers: { authorization: `Bearer ${jwt}` } }),
    ),
  );
  await waitUntil(() => scanned.every((qr) => qr.state.state === 'scanned'), 'the scans to be pushed');

  const killedAt = Date.now();
  await a.kill();
  // Every client is connected again, to node B, and its flow subscribed there.
  await waitUntil(
    () => clients.every((c) => c.state === 'connected' && c.url === b.url) && flows.every((qr) => qr.subscriptionState === 'subscribed'),
    'every client to be subscribed on node B',
    30_000,
  );
  const movedMs = Date.now() - killedAt;

  // Confirm every flow on B (scanning the rest first); every confirmation is delivered and redeemed.
  await Promise.all(flows.map((qr) => phoneConfirms(log, b.url, qr.id, jwt)));
  const outcomes = await Promise.all(sessions);
  const failures = outcomes.filter((o): o is Error => o instanceof Error).map((e) => e.message);
  expect(failures).toEqual([]);
  for (const qr of flows) expect(qr.state).toMatchObject({ state: 'redeemed', version: 4 });
  for (const o of outcomes) expect((o as Session).user.email).toBe(ANA.email);
  expect([...log.statuses()].filter((s) => s >= 500)).toEqual([]);
  expect(b.child.exitCode).toBeNull();
  console.log(`[node-loss] ${JSON.stringify({ flows: FLOWS, all_resubscribed_on_b_ms: movedMs, statuses: log.summary() })}`);
});
