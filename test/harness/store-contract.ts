/**
 * Shared setup of the store contract tests (test/integration/*-store.contract.test.ts): one private
 * redis-server per test file, and fixtures that give the store under test, `n` peers over the same
 * data (Redis: each on its own connection, for real concurrency) and a cleanup.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { startRedis, uniquePrefix, type RedisHandle } from './redis-server.js';

export interface StoreFixture<S> {
  store: S;
  /** `n` more stores over the same data; for redis each on its own connection. */
  peers(n: number): S[];
  cleanup(): Promise<void>;
}

/** The test file's redis-server and a command connection to it (set in beforeAll). */
export interface ContractRedis {
  server: RedisHandle;
  redis: Redis;
}

/** Start a private redis-server before the file's tests and stop it after them. */
export function useContractRedis(): ContractRedis {
  const ctx = {} as ContractRedis;
  beforeAll(async () => {
    ctx.server = await startRedis();
    ctx.redis = new Redis(ctx.server.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await ctx.redis?.quit();
    await ctx.server?.stop();
  });
  return ctx;
}

/** Delete every key under `prefix` (SCAN, not KEYS). */
export async function deleteByPrefix(conn: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await conn.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    if (keys.length) await conn.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/**
 * Keys under `prefix` (SCAN, not KEYS). SCAN leaves out keys past their expiry time, so this is
 * what the store holds, as Redis's own expiry sees it.
 */
export async function countByPrefix(conn: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await conn.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    n += keys.length;
    cursor = next;
  } while (cursor !== '0');
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
        const conn = new Redis(ctx.server.url, { maxRetriesPerRequest: 1 });
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
