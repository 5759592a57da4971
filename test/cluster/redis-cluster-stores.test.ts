/**
 * The Redis stores on a real Redis Cluster (three masters, no replicas, started here from the
 * machine's redis-server) through an ioredis Cluster client: every script and command of a flow,
 * a user, a login counter and a code lands on one slot, or the cluster answers CROSSSLOT.
 * A smoke test of the key layout; the shared Sentinel/Cluster harness lives in test/harness.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisCodeStore } from '../../server/src/codes/redis-code-store.js';
import type { FlowRecord } from '../../server/src/flows/flow-record.js';
import { RedisFlowStore } from '../../server/src/flows/redis-flow-store.js';
import { RedisLoginCounters } from '../../server/src/login/login-counters.js';
import { FLOW_SHARDS, flowShard, mintUserId, RedisKeys } from '../../server/src/store/keys.js';
import { RedisUserStore } from '../../server/src/users/redis-user-store.js';
import { keySlot } from '../../server/src/store/key-slot.js';
import { execPipeline } from '../../server/src/store/redis-connection.js';
import { StoreUnavailableError } from '../../server/src/errors.js';

/** A private three-master cluster (bus port = port + 10000). */
async function startCluster(): Promise<{ ports: number[]; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-cluster-keys-'));
  const ports: number[] = [];
  while (ports.length < 3) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    if (!ports.includes(port) && (await isFree(port)) && (await isFree(port + 10000))) ports.push(port);
  }
  const children: ChildProcess[] = ports.map((port) =>
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }),
  );
  const stop = () => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await vi.waitFor(() => expect(cli(port, 'PING')).toBe('PONG'), { timeout: 10_000, interval: 50 });
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create: ${created.stdout}${created.stderr}`);
    for (const port of ports) await vi.waitFor(() => expect(cli(port, 'CLUSTER', 'INFO')).toMatch(/cluster_state:ok/), { timeout: 20_000, interval: 100 });
  } catch (err) {
    stop();
    throw err;
  }
  return { ports, stop };
}

function cli(port: number, ...args: string[]): string {
  return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer().once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('the Redis stores on a three-master Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  let client: Cluster;
  let redis: Redis;
  const keys = new RedisKeys('smoke:');

  beforeAll(async () => {
    cluster = await startCluster();
    client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 1 } });
    // The stores are typed for a Redis connection; a Cluster client takes the same commands.
    redis = client as unknown as Redis;
  }, 60_000);

  afterAll(async () => {
    await client?.quit();
    cluster?.stop();
  });

  it('the due shards are in 16 slots (as Redis computes them), spread over all three masters', async () => {
    await client.ping();
    const slots = Array.from({ length: FLOW_SHARDS }, (_, s) => Number(cli(cluster.ports[0], 'CLUSTER', 'KEYSLOT', keys.dueSet(s))));
    expect(slots).toEqual(Array.from({ length: FLOW_SHARDS }, (_, s) => keySlot(keys.dueSet(s))));
    expect(new Set(slots).size).toBe(FLOW_SHARDS);
    expect(new Set(slots.map((slot) => client.slots[slot][0])).size).toBe(3);
  });

  it('a pipeline over keys of two masters is a bug, not an outage: execPipeline passes ioredis\'s refusal through', async () => {
    await client.ping();
    const [a, b] = ['{a}k', '{b}k'];
    expect(client.slots[keySlot(a)]![0]).not.toBe(client.slots[keySlot(b)]![0]);
    const refused = await execPipeline(client.pipeline().get(a).get(b)).then(
      () => null,
      (err: Error) => err,
    );
    expect(refused?.message).toMatch(/^All keys in the pipeline should belong to the same slots allocation group/);
    expect(refused).not.toBeInstanceOf(StoreUnavailableError);
  });

  it('flows: create, read, transition, sweep and the login counters, across every shard', async () => {
    const flows = new RedisFlowStore(redis, { keys });
    const counters = new RedisLoginCounters(redis, keys);
    const now = Date.now();
    const records: FlowRecord[] = Array.from({ length: 200 }, (_, i) => ({
      kind: i % 2 ? 'login' : 'qr',
      id: `smoke-${i}`,
      state: i % 2 ? 'queued' : 'pending',
      version: 1,
      createdAt: now,
      expiresAt: i < 100 ? now - 1_000 + i : now + 60_000,
      watchTokenHash: 'ab'.repeat(32),
    }));
    await Promise.all(records.map((r) => flows.create(r, 60_000)));
    expect(new Set(records.map((r) => flowShard(r.id))).size).toBe(FLOW_SHARDS);
    expect(await flows.get('qr', 'smoke-0')).toEqual(records[0]);

    const due = await flows.dueForExpiry(now, 1_000);
    expect(due).toEqual(records.slice(0, 100).map((r) => ({ kind: r.kind, id: r.id })));
    const results = await Promise.all(due.map(({ kind, id }) => flows.transition({ kind, id, to: 'expired', from: ['pending', 'queued'], now, tombstoneMs: 5_000 })));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(await flows.dueForExpiry(now, 1_000)).toEqual([]);

    const scanned = await flows.transition({ kind: 'qr', id: 'smoke-100', to: 'scanned', from: ['pending'], now, tombstoneMs: 5_000, patch: { userId: 'u1' } });
    expect(scanned).toMatchObject({ ok: true, record: { state: 'scanned', version: 2, userId: 'u1' } });

    const logins = records.filter((r) => r.kind === 'login' && r.expiresAt > now);
    for (const r of logins) await counters.nextTicket();
    const taken = await Promise.all(logins.map((r) => counters.markTaken(r.id)));
    expect(Math.max(...taken.map((n) => n ?? 0))).toBe(logins.length);
    expect(await counters.markTaken(logins[0].id)).toBeNull();
    expect(await counters.taken()).toBe(logins.length);
  });

  it('users: minted and foreign ids, and ten racing creates of one email', async () => {
    const users = new RedisUserStore(redis, { keys });
    const base = { displayName: 'Ana', avatarUrl: null, passwordHash: 'x', createdAt: 1 };
    const minted = { ...base, id: mintUserId('ana@example.com'), email: 'ana@example.com' };
    const foreign = { ...base, id: 'foreign-id-1', email: 'bo@example.com' };
    expect(await users.create(minted)).toBe('created');
    expect(await users.create(foreign)).toBe('created');
    expect(await users.byEmail('ana@example.com')).toEqual(minted);
    expect(await users.byEmail('bo@example.com')).toEqual(foreign);
    expect(await users.byId(foreign.id)).toEqual(foreign);
    const racers = Array.from({ length: 10 }, (_, i) => ({ ...base, id: i % 2 ? mintUserId('race@example.com') : `race-${i}`, email: 'race@example.com' }));
    const outcomes = await Promise.all(racers.map((u) => users.create(u)));
    expect(outcomes.filter((o) => o === 'created')).toHaveLength(1);
    const winner = racers[outcomes.indexOf('created')];
    expect(await users.byEmail('race@example.com')).toEqual(winner);
    for (const loser of racers.filter((u) => u !== winner)) expect(await users.byId(loser.id)).toBeNull();
  });

  it('codes: issue, deliver, verify', async () => {
    const codes = new RedisCodeStore(redis, { keys });
    const now = Date.now();
    const issued = await codes.issue('login:email:r1', { now, ttlMs: 60_000, resendMs: 30_000, maxAttempts: 5, generation: 'g1', hash: 'ab'.repeat(32), sealed: 's' });
    expect(issued).toMatchObject({ outcome: 'created' });
    expect(await codes.setDelivery('login:email:r1', 'g1', 'sent')).toBe(true);
    expect(await codes.verify('login:email:r1', { hash: 'ab'.repeat(32), now, maxAttempts: 5 })).toBe('ok');
  });
});
