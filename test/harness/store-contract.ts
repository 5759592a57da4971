/**
 * Shared setup of the store contract tests (test/integration/*-store.contract.test.ts): one private
 * Redis deployment per test file and topology (one redis-server, a Sentinel group, a Redis
 * Cluster), and fixtures that give the store under test, `n` peers over the same data (Redis: each
 * on its own connection, for real concurrency) and a cleanup.
 */
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import type { RedisConfig } from '../../server/src/store/redis-config.js';
import { createRedisConnection, type RedisClient } from '../../server/src/store/redis-connection.js';
import { startRedis, uniquePrefix, type RedisHandle } from './redis-server.js';
import { startRedisCluster, startSentinelGroup, type RedisClusterHandle, type SentinelGroup } from './redis-topologies.js';

/** The Redis deployments a contract suite runs on. */
export type RedisTopologyName = 'single' | 'sentinel' | 'cluster';

/**
 * Whether the Redis stores are Cluster-safe (every Lua script on one hash slot, BullMQ's prefix in
 * braces): they are (store/keys.ts), so the Cluster variants of the contract suites run.
 */
export const CLUSTER_SAFE = true;

/** Why the Cluster variants are skipped, for their titles. */
export const CLUSTER_SKIP_REASON = CLUSTER_SAFE ? '' : ' (skipped: the stores are not Cluster-safe before the cluster-keys branch; flip CLUSTER_SAFE in test/harness/store-contract.ts)';

export interface StoreFixture<S> {
  store: S;
  /** `n` more stores over the same data; for redis each on its own connection. */
  peers(n: number): S[];
  cleanup(): Promise<void>;
}

/** The test file's Redis deployment and a command connection to it (set in beforeAll). */
export interface ContractRedis {
  topology: RedisTopologyName;
  /** The deployment as Config.redis holds it (for createRedisConnection, BullQueueFactory). */
  config: RedisConfig;
  /** One Redis only: the redis-server. */
  server?: RedisHandle;
  /** Sentinel only: the group (kill its master, wait for the failover). */
  sentinel?: SentinelGroup;
  /** Cluster only: the cluster. */
  cluster?: RedisClusterHandle;
  /** A command connection (on Cluster an ioredis Cluster: same commands, typed Redis like the stores' argument). */
  redis: Redis;
  /** Another connection of the same kind, for a peer; the caller quits it. */
  connect(): Redis;
}

/**
 * Start a private Redis deployment before the tests of the enclosing block (or file) and stop it
 * after them: one redis-server (default), a Sentinel group or a Redis Cluster.
 */
export function useContractRedis(topology: RedisTopologyName = 'single'): ContractRedis {
  const ctx = { topology } as ContractRedis;
  let stop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    if (topology === 'single') {
      ctx.server = await startRedis();
      ctx.config = { mode: 'single', url: ctx.server.url, tls: null };
      stop = () => ctx.server!.stop();
    } else if (topology === 'sentinel') {
      ctx.sentinel = await startSentinelGroup();
      const sentinels = ctx.sentinel.sentinels.split(',').map((s) => ({ host: s.split(':')[0]!, port: Number(s.split(':')[1]) }));
      ctx.config = { mode: 'sentinel', sentinels, masterName: ctx.sentinel.masterName, tls: null };
      stop = () => ctx.sentinel!.stop();
    } else {
      ctx.cluster = await startRedisCluster();
      const nodes = ctx.cluster.nodes.split(',').map((s) => ({ host: s.split(':')[0]!, port: Number(s.split(':')[1]) }));
      ctx.config = { mode: 'cluster', nodes, tls: null };
      stop = () => ctx.cluster!.stop();
    }
    // Through the server's own factory, with the plain behaviour tests expect (offline queue, one retry).
    ctx.connect = () => createRedisConnection(ctx.config, 'cli', { lazyConnect: false }) as Redis;
    ctx.redis = ctx.connect();
  }, 60_000);
  afterAll(async () => {
    await ctx.redis?.quit();
    await stop();
  });
  return ctx;
}

/** The masters of a Cluster, or the connection itself: where a SCAN must run to see every key. */
function scanTargets(conn: RedisClient): Redis[] {
  return conn instanceof Cluster ? conn.nodes('master') : [conn];
}

/** Delete every key under `prefix` (SCAN, not KEYS; on every master of a Cluster). */
export async function deleteByPrefix(conn: RedisClient, prefix: string): Promise<void> {
  for (const node of scanTargets(conn)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      // One DEL per key: on a Cluster the keys of one node may still span slots.
      if (keys.length) await Promise.all(keys.map((k) => node.del(k)));
      cursor = next;
    } while (cursor !== '0');
  }
}

/**
 * Keys under `prefix` (SCAN, not KEYS; on every master of a Cluster). SCAN leaves out keys past
 * their expiry time, so this is what the store holds, as Redis's own expiry sees it.
 */
export async function countByPrefix(conn: RedisClient, prefix: string): Promise<number> {
  let n = 0;
  for (const node of scanTargets(conn)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      n += keys.length;
      cursor = next;
    } while (cursor !== '0');
  }
  return n;
}

/** An in-memory store: its peers are itself (one process, one map). */
export function memoryStoreFixture<S>(store: S, cleanup: () => Promise<void> = async () => {}): StoreFixture<S> {
  return { store, peers: (n) => Array.from({ length: n }, () => store), cleanup };
}

/**
 * A Redis store under a fresh key prefix; peers get connections of their own. Cleanup runs
 * `close` (if given), quits the peers' connections and deletes the prefix's keys. `prefix`:
 * default a fresh `uniquePrefix(name)` (pass one to inspect the keys yourself).
 */
export function redisStoreFixture<S>(
  ctx: ContractRedis,
  name: string,
  make: (conn: Redis, prefix: string) => S,
  close?: (store: S) => Promise<void>,
  prefix: string = uniquePrefix(name),
): StoreFixture<S> {
  const store = make(ctx.redis, prefix);
  const extra: Redis[] = [];
  return {
    store,
    peers: (n) =>
      Array.from({ length: n }, () => {
        const conn = ctx.connect();
        extra.push(conn);
        return make(conn, prefix);
      }),
    cleanup: async () => {
      await close?.(store);
      await Promise.all(extra.map((c) => c.quit()));
      await deleteByPrefix(ctx.redis, prefix);
    },
  };
}
