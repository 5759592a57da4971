/**
 * The login queue's counters (tickets drawn, jobs taken), MemoryLoginCounters and RedisLoginCounters
 * through the same tests; then what only Redis has: the "taken" marker, a key of its own that lives
 * exactly as long as its flow's hash (login-take.lua, flow-transition.lua, flow-create.lua).
 *
 * Redis purging a key is real time (PEXPIRE), polled with vi.waitFor; nothing sleeps.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FlowRecord } from '../../server/src/flows/flow-record.js';
import { RedisFlowStore } from '../../server/src/flows/redis-flow-store.js';
import { MemoryLoginCounters, RedisLoginCounters, type LoginCounters } from '../../server/src/login/login-counters.js';
import { RedisKeys } from '../../server/src/store/keys.js';
import { uniquePrefix } from '../harness/redis-server.js';
import { deleteByPrefix, useContractRedis } from '../harness/store-contract.js';

const ctx = useContractRedis();
const LONG_TOMBSTONE_MS = 60_000;
const SHORT_MS = 300;

function login(overrides: Partial<FlowRecord> = {}): FlowRecord {
  const now = Date.now();
  return {
    kind: 'login',
    id: randomBytes(16).toString('base64url'),
    state: 'queued',
    version: 1,
    createdAt: now,
    expiresAt: now + 60_000,
    watchTokenHash: 'ab'.repeat(32),
    ...overrides,
  };
}

describe.each(['memory', 'redis'] as const)('LoginCounters contract: %s', (backend) => {
  let counters: LoginCounters;
  let flows: RedisFlowStore;
  let prefix: string;

  beforeEach(() => {
    prefix = uniquePrefix('counters');
    const keys = new RedisKeys(prefix);
    flows = new RedisFlowStore(ctx.redis, { keys });
    counters = backend === 'memory' ? new MemoryLoginCounters() : new RedisLoginCounters(ctx.redis, keys);
  });

  afterEach(async () => {
    await deleteByPrefix(ctx.redis, prefix);
  });

  /** A queued login whose job a worker can take (the Redis counters need its flow). */
  async function queued(): Promise<FlowRecord> {
    const r = login();
    await flows.create(r, LONG_TOMBSTONE_MS);
    return r;
  }

  it('draws tickets 1, 2, 3…', async () => {
    expect([await counters.nextTicket(), await counters.nextTicket(), await counters.nextTicket()]).toEqual([1, 2, 3]);
  });

  it('counts each flow taken once, and reports the running total', async () => {
    const [a, b] = [await queued(), await queued()];
    expect(await counters.taken()).toBe(0);
    expect(await counters.markTaken(a.id)).toBe(1);
    expect(await counters.markTaken(a.id)).toBeNull();
    expect(await counters.markTaken(b.id)).toBe(2);
    expect(await counters.taken()).toBe(2);
  });
});

describe('RedisLoginCounters: the taken marker', () => {
  let prefix: string;
  let keys: RedisKeys;
  let flows: RedisFlowStore;
  let counters: RedisLoginCounters;

  beforeEach(() => {
    prefix = uniquePrefix('taken');
    keys = new RedisKeys(prefix);
    flows = new RedisFlowStore(ctx.redis, { keys });
    counters = new RedisLoginCounters(ctx.redis, keys);
  });

  afterEach(async () => {
    await deleteByPrefix(ctx.redis, prefix);
  });

  it('is a key of its own; the flow hash holds only the record', async () => {
    const r = login();
    await flows.create(r, LONG_TOMBSTONE_MS);
    expect(await counters.markTaken(r.id)).toBe(1);
    expect(await ctx.redis.exists(keys.flowTaken('login', r.id))).toBe(1);
    expect(await ctx.redis.hexists(keys.flow('login', r.id), 'taken')).toBe(0);
    expect(await flows.get('login', r.id)).toEqual(r);
  });

  it('expires together with a flow nobody moves', async () => {
    const r = login({ expiresAt: Date.now() + 100 });
    await flows.create(r, SHORT_MS);
    await counters.markTaken(r.id);
    // The same absolute expiry, to the millisecond (two PTTL reads would straddle a millisecond).
    const flowAt = Number(await ctx.redis.call('PEXPIRETIME', keys.flow('login', r.id)));
    expect(flowAt).toBeGreaterThan(Date.now() - 1_000);
    expect(Number(await ctx.redis.call('PEXPIRETIME', keys.flowTaken('login', r.id)))).toBe(flowAt);
    await vi.waitFor(async () => expect(await ctx.redis.exists(keys.flow('login', r.id))).toBe(0), { timeout: 5_000, interval: 25 });
    expect(await ctx.redis.exists(keys.flowTaken('login', r.id))).toBe(0);
  });

  it('is cut to the tombstone time with the flow when the login ends', async () => {
    const r = login();
    await flows.create(r, LONG_TOMBSTONE_MS);
    await counters.markTaken(r.id);
    for (const to of ['processing', 'failed'] as const) {
      const res = await flows.transition({
        kind: 'login', id: r.id, to, from: [to === 'processing' ? 'queued' : 'processing'], now: Date.now(), tombstoneMs: SHORT_MS,
      });
      expect(res.ok, to).toBe(true);
    }
    const markerTtl = await ctx.redis.pttl(keys.flowTaken('login', r.id));
    expect(markerTtl).toBeGreaterThan(0);
    expect(markerTtl).toBeLessThanOrEqual(SHORT_MS);
    expect(await ctx.redis.call('PEXPIRETIME', keys.flowTaken('login', r.id))).toBe(await ctx.redis.call('PEXPIRETIME', keys.flow('login', r.id)));
    await vi.waitFor(async () => expect(await ctx.redis.exists(keys.flowTaken('login', r.id))).toBe(0), { timeout: 5_000, interval: 25 });
    expect(await ctx.redis.exists(keys.flow('login', r.id))).toBe(0);
  });

  it('goes when the flow is created anew, so the new record counts once more', async () => {
    const r = login();
    await flows.create(r, LONG_TOMBSTONE_MS);
    expect(await counters.markTaken(r.id)).toBe(1);
    await flows.create({ ...r, createdAt: r.createdAt + 1 }, LONG_TOMBSTONE_MS);
    expect(await ctx.redis.exists(keys.flowTaken('login', r.id))).toBe(0);
    expect(await counters.markTaken(r.id)).toBe(2);
  });

  it('is not set, and nothing counted, for a flow that is gone', async () => {
    const id = login().id;
    expect(await counters.markTaken(id)).toBeNull();
    expect(await counters.taken()).toBe(0);
    expect(await ctx.redis.exists(keys.flowTaken('login', id))).toBe(0);
  });

  it('a flow marked by the previous release (a taken field in the hash) still counts as taken', async () => {
    const r = login();
    await flows.create(r, LONG_TOMBSTONE_MS);
    await ctx.redis.hset(keys.flow('login', r.id), 'taken', '1');
    expect(await counters.markTaken(r.id)).toBeNull();
    expect(await counters.taken()).toBe(0);
  });
});
