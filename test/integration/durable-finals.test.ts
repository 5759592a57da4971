/**
 * Acknowledged final states survive a failover (contract §8, store/redis-durability.ts): a
 * transition to `confirmed` (or a final state a caller is told about) answers only once a replica
 * has it (WAIT), on one master with a replica and on a Redis Cluster (WAIT reaches the node that owns
 * the flow's slot); a replica that does not ack in time is counted, and the answer still goes out.
 * A stalled replica (DEBUG SLEEP) makes the wait visible.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../server/src/flows/flow-record.js';
import { RedisFlowStore } from '../../server/src/flows/redis-flow-store.js';
import { keySlot } from '../../server/src/store/key-slot.js';
import { RedisKeys } from '../../server/src/store/keys.js';
import { redisDurabilityFromEnv } from '../../server/src/store/redis-durability.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startRedisCluster, type RedisClusterHandle } from '../harness/redis-topologies.js';

const STALL_MS = 600;

function qrRecord(): FlowRecord {
  const now = Date.now();
  return { kind: 'qr', id: randomBytes(16).toString('base64url'), state: 'pending', version: 1, createdAt: now, expiresAt: now + 60_000, watchTokenHash: 'h' };
}

/** Create a fresh flow and move it to `scanned`. */
async function scan(store: RedisFlowStore, record: FlowRecord): Promise<void> {
  await store.create(record, 60_000);
  const scanned = await store.transition({ kind: record.kind, id: record.id, now: Date.now(), tombstoneMs: 60_000, to: 'scanned', from: ['pending'], patch: { userId: 'u1' } });
  expect(scanned.ok).toBe(true);
}

/** Move a scanned flow to `confirmed`; resolves with the confirm's duration, ms. */
async function confirmScanned(store: RedisFlowStore, record: FlowRecord): Promise<number> {
  const t0 = performance.now();
  const confirmed = await store.transition({ kind: record.kind, id: record.id, now: Date.now(), tombstoneMs: 60_000, to: 'confirmed', from: ['scanned'], requireUserId: 'u1' });
  const ms = performance.now() - t0;
  expect(confirmed.ok).toBe(true);
  return ms;
}

/** Move a fresh flow to `confirmed` through `scanned`; resolves with the confirm's duration, ms. */
async function confirm(store: RedisFlowStore, record: FlowRecord): Promise<number> {
  await scan(store, record);
  return confirmScanned(store, record);
}

/**
 * Freeze the replica's process for STALL_MS (SIGSTOP, then SIGCONT: it neither applies nor acks the
 * replication stream meanwhile; DEBUG SLEEP is disabled on Redis 7). Resolves once it is frozen, with
 * a promise of the thaw and `thawedYet()`, true from the SIGCONT on. An answer that waited for the
 * replica's ack comes after it; asserting that order, not a duration, holds on a loaded machine.
 */
async function stall(replica: Redis, ms = STALL_MS): Promise<{ thawed: Promise<void>; thawedYet: () => boolean }> {
  const pid = Number(/process_id:(\d+)/.exec(await replica.info('server'))![1]);
  process.kill(pid, 'SIGSTOP');
  let done = false;
  const thawed = new Promise<void>((resolve) =>
    setTimeout(() => {
      process.kill(pid, 'SIGCONT');
      done = true;
      resolve();
    }, ms),
  );
  return { thawed, thawedYet: () => done };
}

describe('one master and a replica', () => {
  let master: RedisHandle;
  let replicaServer: RedisHandle;
  let client: Redis;
  let replica: Redis;
  let stalled: Redis;

  beforeAll(async () => {
    master = await startRedis();
    replicaServer = await startRedis();
    client = new Redis(master.url);
    replica = new Redis(replicaServer.url);
    stalled = new Redis(replicaServer.url);
    await replica.call('REPLICAOF', '127.0.0.1', String(master.port));
    for (;;) {
      if (/master_link_status:up/.test(await replica.info('replication'))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 30_000);

  afterAll(async () => {
    client?.disconnect();
    replica?.disconnect();
    stalled?.disconnect();
    await replicaServer?.stop();
    await master?.stop();
  });

  it('a confirm answers only after the replica holds it', async () => {
    const keys = new RedisKeys(uniquePrefix('durable'));
    const store = new RedisFlowStore(client, { keys, durability: { replicas: 1, timeoutMs: 1500 } });
    const record = qrRecord();
    const { thawed, thawedYet } = await stall(stalled);
    await confirm(store, record);
    // The answer came after the replica woke: it waited for its ack.
    expect(thawedYet()).toBe(true);
    await thawed;
    expect(await replica.hget(keys.flow('qr', record.id), 'state')).toBe('confirmed');
  });

  it('a confirm whose script Redis lost (SCRIPT FLUSH) is made the plain way and still waits for the replica', async () => {
    const keys = new RedisKeys(uniquePrefix('durable'));
    const unreplicated: number[] = [];
    const store = new RedisFlowStore(client, { keys, durability: { replicas: 1, timeoutMs: 1500 }, onUnreplicated: (a) => unreplicated.push(a) });
    const record = qrRecord();
    await scan(store, record);
    // The pipelined EVALSHA gets NOSCRIPT, and the WAIT behind it ran before the transition did.
    await client.script('FLUSH');
    const { thawed, thawedYet } = await stall(stalled);
    await confirmScanned(store, record);
    expect(thawedYet()).toBe(true);
    await thawed;
    expect(unreplicated).toEqual([]);
    expect(await replica.hget(keys.flow('qr', record.id), 'state')).toBe('confirmed');
  });

  it('a replica that does not ack in time is counted and the confirm is answered anyway', async () => {
    const keys = new RedisKeys(uniquePrefix('durable'));
    const unreplicated: Array<[number, number]> = [];
    const store = new RedisFlowStore(client, { keys, durability: { replicas: 1, timeoutMs: 100 }, onUnreplicated: (a, w) => unreplicated.push([a, w]) });
    // A long stall: the scan and the confirm with its 100 ms WAIT must end well inside it.
    const { thawed, thawedYet } = await stall(stalled, 2_000);
    await confirm(store, qrRecord());
    // Answered after the 100 ms WAIT timeout, while the replica still sleeps.
    expect(thawedYet()).toBe(false);
    await thawed;
    expect(unreplicated).toEqual([[0, 1]]);
  });

  it('after a WAIT timed out, the next confirms do not wait (WAIT blocks the shared connection)', async () => {
    const keys = new RedisKeys(uniquePrefix('durable'));
    const unreplicated: number[] = [];
    const store = new RedisFlowStore(client, { keys, durability: { replicas: 1, timeoutMs: 300 }, onUnreplicated: (a) => unreplicated.push(a) });
    const { thawed } = await stall(stalled, 1500);
    const first = await confirm(store, qrRecord());
    const second = await confirm(store, qrRecord());
    await thawed;
    expect(first).toBeGreaterThan(250);
    // A second WAIT would block for its whole 300 ms timeout (Redis times it), the replica still asleep.
    expect(second).toBeLessThan(300);
    expect(unreplicated).toEqual([0, 0]);
  });

  it('an expiry does not wait for the replica', async () => {
    const keys = new RedisKeys(uniquePrefix('durable'));
    const unreplicated: number[] = [];
    const store = new RedisFlowStore(client, { keys, durability: { replicas: 1, timeoutMs: 100 }, onUnreplicated: (a) => unreplicated.push(a) });
    const record = { ...qrRecord(), expiresAt: Date.now() - 1 };
    await store.create(record, 60_000);
    const { thawed } = await stall(stalled);
    const res = await store.transition({ kind: 'qr', id: record.id, to: 'expired', from: ['pending', 'scanned', 'confirmed'], now: Date.now(), tombstoneMs: 60_000 });
    await thawed;
    expect(res.ok).toBe(true);
    expect(unreplicated).toEqual([]);
  });
});

describe('the WAIT settings', () => {
  it('default to one replica on Sentinel and Cluster, none on one Redis, and name a bad value', () => {
    expect(redisDurabilityFromEnv({}, { mode: 'single', url: 'redis://x', tls: null })).toEqual({ replicas: 0, timeoutMs: 500 });
    expect(redisDurabilityFromEnv({}, { mode: 'cluster', nodes: [{ host: 'a', port: 1 }], tls: null })).toEqual({ replicas: 1, timeoutMs: 500 });
    expect(redisDurabilityFromEnv({}, { mode: 'sentinel', sentinels: [{ host: 'a', port: 1 }], masterName: 'm', tls: null }).replicas).toBe(1);
    expect(() => redisDurabilityFromEnv({ REDIS_WAIT_TIMEOUT_MS: '0' }, { mode: 'single', url: 'redis://x', tls: null })).toThrow(/REDIS_WAIT_TIMEOUT_MS/);
    expect(() => redisDurabilityFromEnv({ REDIS_WAIT_REPLICAS: 'one' }, { mode: 'single', url: 'redis://x', tls: null })).toThrow(/REDIS_WAIT_REPLICAS/);
    expect(() => redisDurabilityFromEnv({ REDIS_WAIT_REPLICAS: '1' }, null)).toThrow(/REDIS_WAIT_REPLICAS/);
  });
});

describe('Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  let client: Cluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = new Cluster(cluster.nodes.split(',').map((a) => ({ host: a.split(':')[0]!, port: Number(a.split(':')[1]) })), { lazyConnect: true });
    await client.connect();
  }, 60_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  /** The master serving `slot` now, its index in cluster.masters(), and a connection to its replica. */
  async function ownerOf(slot: number): Promise<{ index: number; replica: Redis }> {
    const masters = await cluster.masters();
    const index = masters.findIndex((m) => m.slots.some(([from, to]) => slot >= from && slot <= to));
    // CLUSTER NODES: `<id> <host:port@bus> <flags> <master id> …`; the owner's replica names it.
    const nodes = String(await client.cluster('NODES')).trim().split('\n').map((l) => l.split(' '));
    const line = nodes.find((f) => f[2]!.includes('slave') && f[3] === masters[index]!.id)!;
    return { index, replica: new Redis(Number(line[1]!.split('@')[0]!.split(':')[1]), '127.0.0.1') };
  }

  it("a confirm waits for the replica of the flow's own slot", async () => {
    const keys = new RedisKeys(uniquePrefix('durable'));
    const store = new RedisFlowStore(client as unknown as Redis, { keys, durability: { replicas: 1, timeoutMs: 1500 } });
    const record = qrRecord();
    const { replica } = await ownerOf(keySlot(keys.flow('qr', record.id)));
    try {
      const { thawed, thawedYet } = await stall(replica);
      await confirm(store, record);
      expect(thawedYet()).toBe(true);
      await thawed;
    } finally {
      replica.disconnect();
    }
  });

  it('a confirm whose slot moved since the client last looked (MOVED) follows it and waits for the new owner\'s replica', async () => {
    const keys = new RedisKeys(uniquePrefix('durable'));
    const unreplicated: number[] = [];
    const store = new RedisFlowStore(client as unknown as Redis, { keys, durability: { replicas: 1, timeoutMs: 1500 }, onUnreplicated: (a) => unreplicated.push(a) });
    const record = qrRecord();
    await scan(store, record);
    // Move the flow's slot behind the client's back: its slot map still names the old master, so
    // the pipelined EVALSHA + WAIT go there and the EVALSHA is answered MOVED.
    const slot = keySlot(keys.flow('qr', record.id));
    const before = await ownerOf(slot);
    before.replica.disconnect();
    await cluster.reshard({ slot }, before.index, (before.index + 1) % 3);
    const after = await ownerOf(slot);
    try {
      expect(after.index).toBe((before.index + 1) % 3);
      const { thawed, thawedYet } = await stall(after.replica);
      await confirmScanned(store, record);
      expect(thawedYet()).toBe(true);
      await thawed;
      expect(unreplicated).toEqual([]);
      await after.replica.call('READONLY'); // a Cluster replica answers reads only after READONLY
      expect(await after.replica.hget(keys.flow('qr', record.id), 'state')).toBe('confirmed');
    } finally {
      after.replica.disconnect();
    }
  });
});
