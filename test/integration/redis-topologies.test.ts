/**
 * The harness's highly available topologies come up, fail over, and the failover is measured:
 * a Sentinel group (master, replica, three sentinels) and a Redis Cluster (three masters, three replicas).
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, startSentinelGroup, type RedisClusterHandle, type SentinelGroup } from '../harness/redis-topologies.js';

const hostPort = (s: string) => {
  const [host, port] = s.split(':');
  return { host: host!, port: Number(port) };
};

describe('Sentinel group', () => {
  let group: SentinelGroup;
  beforeAll(async () => {
    group = await startSentinelGroup();
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
  });

  it('serves writes through the sentinels, and after the master is killed the replica takes over with the data', async () => {
    const c = new Redis({ sentinels: group.sentinels.split(',').map(hostPort), name: group.masterName, maxRetriesPerRequest: null });
    c.on('error', () => {}); // refused connects while the master is down
    try {
      await c.set('before-failover', 'kept');
      // Replication is asynchronous: make sure the replica has it before killing the master.
      expect(await c.wait(1, 2000)).toBe(1);
      const before = await group.masterAddress();
      await group.killMaster();
      const { ms, master } = await group.waitForFailover();
      console.log(`sentinel failover: ${ms} ms (${before} -> ${master})`);
      expect(master).not.toBe(before);
      expect(await c.get('before-failover')).toBe('kept');
      await c.set('after-failover', 'written');
      expect(await c.get('after-failover')).toBe('written');
    } finally {
      c.disconnect();
    }
  }, 60_000);
});

describe('Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('has three masters covering every slot', async () => {
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    const covered = masters.flatMap((m) => m.slots).reduce((n, [a, b]) => n + b - a + 1, 0);
    expect(covered).toBe(16384);
  });

  it('moves a given slot with its keys, and a count of slots, between masters', async () => {
    const c = new Cluster(cluster.nodes.split(',').map(hostPort));
    try {
      const slot = 0;
      // `{06S}` hashes to slot 0 (CLUSTER KEYSLOT).
      const key = '{06S}:resharded';
      expect(await c.call('CLUSTER', 'KEYSLOT', key)).toBe(slot);
      await c.set(key, 'moves with its slot');
      const before = await cluster.masters();
      await cluster.reshard({ slot }, 0, 1);
      const after = await cluster.masters();
      const owner = after.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))!;
      expect(owner.id).toBe(before[1]!.id);
      expect(await c.get(key)).toBe('moves with its slot');
      await cluster.reshard(10, 2, 0);
      const count = (m: { slots: Array<[number, number]> }) => m.slots.reduce((n, [a, b]) => n + b - a + 1, 0);
      const source = (await cluster.masters()).find((m) => m.id === before[2]!.id)!;
      expect(count(source)).toBe(count(before[2]!) - 10);
    } finally {
      c.disconnect();
    }
  }, 60_000);

  it('promotes a replica when a master is killed, and the cluster serves every slot again', async () => {
    const c = new Cluster(cluster.nodes.split(',').map(hostPort));
    try {
      const killed = await cluster.killMaster(1);
      const { ms } = await cluster.waitForFailover();
      console.log(`cluster failover: ${ms} ms (master ${killed.address} replaced)`);
      expect((await cluster.masters()).map((m) => m.id)).not.toContain(killed.id);
      for (let i = 0; i < 50; i++) await c.set(`k${i}`, String(i));
      expect(await c.get('k49')).toBe('49');
    } finally {
      c.disconnect();
    }
  }, 60_000);
});
