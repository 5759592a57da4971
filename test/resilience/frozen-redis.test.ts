/**
 * The worst kind of outage: Redis is frozen (SIGSTOP), its connections stay open and nothing
 * answers. No request may hang: store commands time out (REDIS_COMMAND_TIMEOUT_MS) and BullMQ
 * producer calls are bounded (QUEUE_CALL_TIMEOUT_MS), both answering 503 `unavailable`. When Redis
 * runs again (SIGCONT) everything resumes, the expiry sweeper included; jobs queued before a
 * Redis restart with AOF still run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { HandoffError } from '../../server/src/errors.js';
import { BullQueueFactory, QUEUE_CALL_TIMEOUT_MS } from '../../server/src/queue/bullmq-queue.js';
import { ANA, SEED_USERS, login } from '../harness/cluster.js';
import { connectSocketIo, emitAck, recordSocketIo } from '../harness/clients.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';
import { StatusLog, request, retrying, waitUntil, type CreatedFlow } from '../harness/resilience.js';

const redises: RedisHandle[] = [];
const nodes: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  await Promise.all(redises.map((r) => r.stop()));
});

async function elapsed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - started, value };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

describe('BullMQ producer calls are bounded', () => {
  it('add() and counts() answer `unavailable` while Redis is frozen or dead; queued jobs run after an AOF restart', async () => {
    const redis = await startRedis({ appendonly: true });
    redises.push(redis);
    const factory = new BullQueueFactory({ redis: redis.url, prefix: uniquePrefix('bounds').slice(0, -1) });
    const queue = factory.create<{ n: number }>('bounded');
    try {
      await queue.add({ n: 1 });

      await redis.kill('SIGSTOP');
      const frozen = await elapsed(queue.add({ n: 2 }));
      const frozenCounts = await elapsed(queue.counts());
      await redis.kill('SIGCONT');
      expect(frozen.error).toBeInstanceOf(HandoffError);
      expect((frozen.error as HandoffError).code).toBe('unavailable');
      expect(frozen.ms).toBeGreaterThanOrEqual(QUEUE_CALL_TIMEOUT_MS - 50);
      expect(frozen.ms).toBeLessThan(QUEUE_CALL_TIMEOUT_MS + 1_500);
      expect((frozenCounts.error as HandoffError).code).toBe('unavailable');

      await waitUntil(async () => (await queue.counts().catch(() => null)) !== null, 'the queue to answer again', 10_000);
      await queue.add({ n: 3 });
      await redis.kill('SIGKILL');
      const dead = await elapsed(queue.add({ n: 4 }));
      // No offline queue on the producer connection: it fails at once (or at the bound).
      expect(dead.error).toBeDefined();
      expect(dead.ms).toBeLessThan(QUEUE_CALL_TIMEOUT_MS + 500);

      await redis.restart();
      const seen: number[] = [];
      queue.work(async (job) => void seen.push(job.data.n));
      // 1 and 3 were acknowledged before the kill: both run. (The frozen add of 2 answered
      // `unavailable` but may still have reached Redis when it woke up: it may run too.)
      await waitUntil(() => seen.includes(1) && seen.includes(3), 'the jobs queued before the restart to run', 20_000);
      expect(seen).not.toContain(4);
    } finally {
      await redis.kill('SIGCONT').catch(() => {});
      await factory.close();
    }
  }, 60_000);
});

describe('a node whose Redis is frozen', () => {
  it('answers 503 within the command timeout everywhere, and resumes (sweeper included) when Redis runs again', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const node = await startServerProcess({ REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('frozen'), SEED_USERS, QR_TTL_SECONDS: '2' });
    nodes.push(node);
    const log = new StatusLog();
    const jwt = await login(node.url, ANA);
    const flow = (await request(log, 'POST /v1/qr', node.url, 'POST', '/v1/qr')).body as CreatedFlow;
    const socket = await connectSocketIo(node.url);
    const pushes = recordSocketIo(socket);
    try {
      expect(await emitAck(socket, 'subscribe', { topic: flow.topic, watchToken: flow.watchToken })).toMatchObject({ ok: true });

      await redis.kill('SIGSTOP');
      const frozenAt = Date.now();
      const probes = await Promise.all([
        elapsed(request(log, 'GET /readyz', node.url, 'GET', '/readyz')),
        elapsed(request(log, 'GET /v1/flows/:topic', node.url, 'GET', `/v1/flows/${flow.topic}`, { headers: { 'watch-token': flow.watchToken } })),
        elapsed(request(log, 'GET /v1/me', node.url, 'GET', '/v1/me', { headers: { authorization: `Bearer ${jwt}` } })),
        elapsed(request(log, 'POST /v1/sessions (async)', node.url, 'POST', '/v1/sessions', { body: { email: ANA.email, password: ANA.password }, headers: { prefer: 'respond-async' } })),
        elapsed(emitAck(socket, 'subscribe', { topic: flow.topic, watchToken: flow.watchToken })),
      ]);
      for (const probe of probes.slice(0, 4)) {
        expect((probe.value as any).status).toBe(503);
        expect(probe.ms).toBeLessThan(3_500);
      }
      expect(probes[4].value).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      expect(probes[4].ms).toBeLessThan(3_500);
      // The flow's 2 s run out while Redis is frozen.
      await waitUntil(() => Date.now() - frozenAt > 2_500, 'the flow to be past its expiry', 5_000);
      await redis.kill('SIGCONT');

      // The sweeper pushes `expired` without any request once Redis answers again.
      const expired = await pushes.waitForState('expired', 15_000);
      expect(expired.version).toBe(2);
      await retrying(log, 'GET /readyz', node.url, 'GET', '/readyz');
      expect((await request(log, 'POST /v1/qr', node.url, 'POST', '/v1/qr')).status).toBe(201);
      expect([...log.statuses()].filter((s) => s >= 500 && s !== 503)).toEqual([]);
      expect(node.output()).not.toMatch(/unhandled rejection|"msg":"request failed"/);
      console.log(`[frozen-redis] ${JSON.stringify({ probe_ms: probes.map((p) => Math.round(p.ms)) })}`);
    } finally {
      socket.close();
      await redis.kill('SIGCONT').catch(() => {});
    }
  }, 60_000);
});
