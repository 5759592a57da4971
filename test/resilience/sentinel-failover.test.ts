/**
 * Failover smoke test on Redis Sentinel (contract §8): a node configured with REDIS_SENTINELS and
 * REDIS_SENTINEL_MASTER, 40 QR flows in progress (browsers on Socket.IO, half of them confirmed
 * and redeemed before), then the master is SIGKILLed. While the sentinels promote the replica the
 * node answers 503 (never a 500, never a hang), it then works again by itself (the connections
 * ask the sentinels for the new master), the flows confirmed after the failover reach their
 * browsers, and the times (sentinel failover, store recovery as a client sees it) are printed.
 */
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../server/src/config.js';
import { parseSeedUsers, seedUsers } from '../../server/src/users/seed-users.js';
import { ANA, SEED_USERS, login } from '../harness/cluster.js';
import { startInProcess, type InProcessServer } from '../harness/in-process.js';
import { uniquePrefix } from '../harness/redis-server.js';
import { startSentinelGroup, type SentinelGroup } from '../harness/redis-topologies.js';
import { SocketBrowser, StatusLog, phoneConfirms, request, waitUntil, type CreatedFlow } from '../harness/resilience.js';
import { TEST_SERVER_ENV } from '../harness/server-process.js';

const FLOWS = 40;
const PROBE_EVERY_MS = 50;

let group: SentinelGroup | null = null;
let node: InProcessServer | null = null;
const browsers: SocketBrowser[] = [];

afterAll(async () => {
  for (const b of browsers) b.close();
  await node?.close();
  await group?.stop();
});

it('kill the Sentinel master mid-flows: 503 during the failover, then the node works again and every flow ends redeemed', { timeout: 120_000 }, async () => {
  group = await startSentinelGroup();
  const config = loadConfig({
    ...TEST_SERVER_ENV,
    REDIS_SENTINELS: group.sentinels,
    REDIS_SENTINEL_MASTER: group.masterName,
    REDIS_PREFIX: uniquePrefix('sentinel'),
    QR_TTL_SECONDS: '300',
  });
  expect(config.redis?.mode).toBe('sentinel');
  node = await startInProcess(config);
  await seedUsers(node.server.handoff.users, parseSeedUsers(SEED_USERS));
  const base = node.base;
  const log = new StatusLog();
  const jwt = await login(base, ANA);

  // --- 40 flows, each watched by a browser; the first half confirmed and redeemed before the kill ---
  for (let i = 0; i < FLOWS; i++) {
    const created = await request(log, 'POST /v1/qr', base, 'POST', '/v1/qr');
    expect(created.status).toBe(201);
    const browser = new SocketBrowser(base, created.body as CreatedFlow);
    browsers.push(browser);
    await browser.subscribed;
  }
  const before = browsers.slice(0, FLOWS / 2);
  const after = browsers.slice(FLOWS / 2);
  await Promise.all(before.map((b) => phoneConfirms(log, base, b.flow.id, jwt)));
  await Promise.all(before.map((b) => b.final));
  // Replication is asynchronous: make sure the replica holds everything written so far (a write
  // and WAIT on the same stream) so this smoke test measures availability, not write loss.
  const admin = new Redis({ sentinels: config.redis!.mode === 'sentinel' ? config.redis!.sentinels : [], name: group.masterName, maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  await admin.set(`${config.redisPrefix}wait-probe`, '1');
  expect(await admin.wait(1, 5000)).toBe(1);
  admin.disconnect();

  // --- a client creating flows every 50 ms through the failover, every answer timed ------------------
  const probes: Array<{ at: number; status: number; ms: number }> = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const at = Date.now();
      try {
        const res = await request(log, 'POST /v1/qr (probe)', base, 'POST', '/v1/qr', { timeoutMs: 10_000 });
        probes.push({ at, status: res.status, ms: res.ms });
      } catch {
        probes.push({ at, status: 0, ms: Date.now() - at });
      }
      await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
    }
  })();

  await group.killMaster();
  const killedAt = Date.now();
  const failover = await group.waitForFailover();
  // Recovered: a probe sent after the kill answered 201, after at least one 503 (the window).
  const recoveredAt = await waitUntil(
    () => {
      const firstDown = probes.find((p) => p.at >= killedAt && p.status === 503);
      return firstDown ? probes.find((p) => p.at > firstDown.at && p.status === 201)?.at : undefined;
    },
    'a probe to answer 201 after the failover',
    30_000,
  );
  // The remaining flows are confirmed after the failover and reach their browsers.
  await Promise.all(after.map((b) => phoneConfirms(log, base, b.flow.id, jwt)));
  const finals = await Promise.all(browsers.map((b) => b.final));
  probing = false;
  await prober;

  const window = probes.filter((p) => p.at >= killedAt && p.at < recoveredAt);
  const unavailable = window.filter((p) => p.status === 503);
  const slowest503 = Math.max(...unavailable.map((p) => p.ms));
  console.log(
    `sentinel failover: master killed -> replica promoted ${failover.ms} ms; ` +
      `store back for clients ${recoveredAt - killedAt} ms after the kill; ` +
      `${unavailable.length} probes answered 503 meanwhile (slowest ${Math.round(slowest503)} ms); statuses ${JSON.stringify(log.summary())}`,
  );

  expect(unavailable.length).toBeGreaterThan(0);
  // No 5xx other than 503, no request without an answer, and a 503 comes fast (fail fast, no hang).
  expect([...log.statuses()].filter((s) => s >= 500 && s !== 503)).toEqual([]);
  expect(probes.filter((p) => p.status === 0)).toEqual([]);
  expect(slowest503).toBeLessThan(3_000);
  expect(finals.map((s) => s.state)).toEqual(Array(FLOWS).fill('redeemed'));
  for (const b of browsers) expect(b.finals).toHaveLength(1);
});
