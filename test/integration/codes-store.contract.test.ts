/**
 * One behaviour, two implementations: MemoryCodeStore and RedisCodeStore (server/lua/code-*.lua on
 * a private redis-server from the harness) run through the same tests. Time is passed in (`now`),
 * except for purging, which follows the real clock in both (Redis PEXPIREAT).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CodeCrypto } from '../../server/src/codes/code-crypto.js';
import type { CodeStore, IssueRequest } from '../../server/src/codes/code-store.js';
import { MemoryCodeStore } from '../../server/src/codes/memory-code-store.js';
import { RedisCodeStore } from '../../server/src/codes/redis-code-store.js';
import { uniquePrefix } from '../harness/redis-server.js';
import { countByPrefix, deleteByPrefix, memoryStoreFixture, redisStoreFixture, useContractRedis, CLUSTER_SAFE, CLUSTER_SKIP_REASON, type ContractRedis, type StoreFixture } from '../harness/store-contract.js';

const ctx = useContractRedis();
const sentinel = useContractRedis('sentinel');
interface Fixture extends StoreFixture<CodeStore> {
  /**
   * Records the store holds, without reading any (a read purges lazily): memory counts its map
   * after its own timed sweep; Redis counts the code hashes under the prefix (SCAN).
   */
  heldRecords(): Promise<number>;
}
const memoryFixture = (): Fixture => {
  const sweeps: Array<() => void> = [];
  const store = new MemoryCodeStore({ sweepIntervalMs: 5, onSweep: () => sweeps.splice(0).forEach((resolve) => resolve()) });
  return {
    ...memoryStoreFixture<CodeStore>(store, () => store.close()),
    heldRecords: async () => {
      if (store.size() > 0) await new Promise<void>((resolve) => sweeps.push(resolve));
      return store.size();
    },
  };
};
const redisFixture = (c: ContractRedis): Fixture => {
  const prefix = uniquePrefix('codes');
  return {
    ...redisStoreFixture<CodeStore>(c, 'codes', (conn, p) => new RedisCodeStore(conn, { prefix: p }), undefined, prefix),
    heldRecords: () => countByPrefix(c.redis, `${prefix}code:`),
  };
};

const crypto = new CodeCrypto('contract-secret-contract-secret-0123456789');
const TTL = 60_000;
const RESEND = 10_000;
const MAX = 5;

/** A fresh key and a helper making issue requests for it. */
function subject(code = '123456') {
  const key = crypto.recordKey('register', 'email', `${randomBytes(6).toString('hex')}@example.com`);
  const request = (now: number, c = code): IssueRequest => {
    const generation = randomBytes(12).toString('base64url');
    return { now, ttlMs: TTL, resendMs: RESEND, maxAttempts: MAX, generation, hash: crypto.hash(key, c), sealed: crypto.seal(c, key, generation) };
  };
  const attempt = (c: string, now: number) => ({ hash: crypto.hash(key, c), now, maxAttempts: MAX });
  return { key, request, attempt };
}

/** The contract, on one store: memory, or Redis on each topology (the describe blocks below). */
function contract(_name: string, makeFixture: () => Fixture): void {
  let fx: Fixture;
  let store: CodeStore;
  let t0: number;

  beforeEach(() => {
    fx = makeFixture();
    store = fx.store;
    t0 = Date.now();
  });

  afterEach(async () => {
    await fx.cleanup();
  });

  it('issues a new code and reads it back', async () => {
    const { key, request } = subject();
    const req = request(t0);
    expect(await store.issue(key, req)).toEqual({ outcome: 'created', generation: req.generation, expiresAt: t0 + TTL });
    expect(await store.get(key)).toEqual({
      generation: req.generation,
      hash: req.hash,
      sealed: req.sealed,
      attempts: 0,
      createdAt: t0,
      expiresAt: t0 + TTL,
      lastSentAt: t0,
      sends: 1,
      delivery: 'queued',
    });
    expect(await store.get(crypto.recordKey('login', 'email', 'nobody@example.com'))).toBeNull();
  });

  it('within the cooldown: refuses with the time left and changes nothing', async () => {
    const { key, request } = subject();
    await store.issue(key, request(t0));
    const before = await store.get(key);
    expect(await store.issue(key, request(t0 + 4_000))).toEqual({ outcome: 'cooldown', retryAfterMs: RESEND - 4_000 });
    expect(await store.get(key)).toEqual(before);
  });

  it('after the cooldown: re-sends the SAME code without extending its expiry', async () => {
    const { key, request } = subject();
    const first = request(t0);
    await store.issue(key, first);
    await store.setDelivery(key, first.generation, 'sent');
    const later = t0 + RESEND;
    expect(await store.issue(key, request(later, '999999'))).toEqual({ outcome: 'resent', generation: first.generation, expiresAt: t0 + TTL, previousSentAt: t0 });
    const record = (await store.get(key))!;
    expect(record).toMatchObject({ generation: first.generation, hash: first.hash, sealed: first.sealed, lastSentAt: later, sends: 2, delivery: 'queued', expiresAt: t0 + TTL });
  });

  it('after expiry: a new code replaces the old one', async () => {
    const { key, request, attempt } = subject('111111');
    const first = request(t0);
    await store.issue(key, first);
    const next = request(t0 + TTL, '222222');
    expect(await store.issue(key, next)).toEqual({ outcome: 'created', generation: next.generation, expiresAt: t0 + 2 * TTL });
    expect(await store.verify(key, attempt('111111', t0 + TTL + 1))).toBe('wrong');
    expect(await store.verify(key, attempt('222222', t0 + TTL + 2))).toBe('ok');
  });

  it('a right code works once: ok, then the record is gone', async () => {
    const { key, request, attempt } = subject('424242');
    await store.issue(key, request(t0));
    expect(await store.verify(key, attempt('424242', t0 + 1))).toBe('ok');
    expect(await store.get(key)).toBeNull();
    expect(await store.verify(key, attempt('424242', t0 + 2))).toBe('missing');
  });

  it('counts wrong attempts; the fifth burns the code, and then even the right one is refused', async () => {
    const { key, request, attempt } = subject('123456');
    const req = request(t0);
    await store.issue(key, req);
    for (let i = 1; i <= MAX; i++) {
      expect(await store.verify(key, attempt('000000', t0 + i)), `attempt ${i}`).toBe('wrong');
      expect((await store.get(key))!.attempts).toBe(i);
    }
    const burned = (await store.get(key))!;
    expect(burned.sealed).toBeNull();
    expect(await store.verify(key, attempt('123456', t0 + 10))).toBe('burned');
    expect((await store.get(key))!.attempts).toBe(MAX);
    // A burned code is never re-sent: after the cooldown a request makes a new one.
    const next = request(t0 + RESEND, '654321');
    expect(await store.issue(key, next)).toMatchObject({ outcome: 'created', generation: next.generation });
    expect(await store.verify(key, attempt('654321', t0 + RESEND + 1))).toBe('ok');
  });

  it('four wrong attempts, then the right one, still works', async () => {
    const { key, request, attempt } = subject('777777');
    await store.issue(key, request(t0));
    for (let i = 1; i < MAX; i++) expect(await store.verify(key, attempt('000001', t0 + i))).toBe('wrong');
    expect(await store.verify(key, attempt('777777', t0 + MAX))).toBe('ok');
  });

  it('an expired code is refused without counting the attempt', async () => {
    const { key, request, attempt } = subject('135790');
    await store.issue(key, request(t0));
    expect(await store.verify(key, attempt('135790', t0 + TTL))).toBe('expired');
    expect((await store.get(key))!.attempts).toBe(0);
  });

  it('withdraw of a created code removes it: the retry at the same moment creates a new one', async () => {
    const { key, request } = subject();
    const first = request(t0);
    await store.issue(key, first);
    expect(await store.withdraw(key, { generation: first.generation, sentAt: t0, resendMs: RESEND })).toBe(true);
    expect(await store.get(key)).toBeNull();
    const retry = request(t0 + 1);
    expect(await store.issue(key, retry)).toEqual({ outcome: 'created', generation: retry.generation, expiresAt: t0 + 1 + TTL });
  });

  it('withdraw of a re-sent code restores the send before: the retry re-sends, not cooldown', async () => {
    const { key, request } = subject();
    const first = request(t0);
    await store.issue(key, first);
    await store.setDelivery(key, first.generation, 'sent');
    const later = t0 + RESEND;
    const resent = await store.issue(key, request(later));
    expect(resent).toMatchObject({ outcome: 'resent', previousSentAt: t0 });
    expect(await store.withdraw(key, { generation: first.generation, sentAt: later, previousSentAt: t0, resendMs: RESEND })).toBe(true);
    expect(await store.get(key)).toMatchObject({ generation: first.generation, lastSentAt: t0, sends: 1, delivery: 'failed', expiresAt: t0 + TTL });
    expect(await store.issue(key, request(later + 1))).toEqual({ outcome: 'resent', generation: first.generation, expiresAt: t0 + TTL, previousSentAt: t0 });
  });

  it('withdraw changes nothing once another code or another send has been issued', async () => {
    const { key, request } = subject();
    const first = request(t0);
    await store.issue(key, first);
    const resent = await store.issue(key, request(t0 + RESEND));
    expect(resent.outcome).toBe('resent');
    const before = await store.get(key);
    // The first send was followed by another: undoing it now would undo the wrong one.
    expect(await store.withdraw(key, { generation: first.generation, sentAt: t0, resendMs: RESEND })).toBe(false);
    expect(await store.withdraw(key, { generation: 'another-generation', sentAt: t0 + RESEND, previousSentAt: t0, resendMs: RESEND })).toBe(false);
    expect(await store.withdraw(crypto.recordKey('login', 'sms', '+447700900123'), { generation: first.generation, sentAt: t0, resendMs: RESEND })).toBe(false);
    expect(await store.get(key)).toEqual(before);
  });

  it('setDelivery only touches the record of that generation', async () => {
    const { key, request } = subject();
    const req = request(t0);
    await store.issue(key, req);
    expect(await store.setDelivery(key, req.generation, 'sent')).toBe(true);
    expect((await store.get(key))!.delivery).toBe('sent');
    expect(await store.setDelivery(key, 'another-generation', 'failed')).toBe(false);
    expect((await store.get(key))!.delivery).toBe('sent');
    expect(await store.setDelivery(crypto.recordKey('login', 'sms', '+447700900123'), req.generation, 'sent')).toBe(false);
  });

  it('of 10 concurrent right answers exactly one is ok', async () => {
    const { key, request, attempt } = subject('246810');
    await store.issue(key, request(t0));
    const stores = [store, ...fx.peers(3)];
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => stores[i % stores.length].verify(key, attempt('246810', t0 + 1))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'missing')).toHaveLength(9);
  });

  it('of 12 concurrent wrong answers exactly 5 are counted; the rest find it burned', async () => {
    const { key, request, attempt } = subject('246810');
    await store.issue(key, request(t0));
    const stores = [store, ...fx.peers(3)];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => stores[i % stores.length].verify(key, attempt('999999', t0 + 1))));
    expect(results.filter((r) => r === 'wrong')).toHaveLength(MAX);
    expect(results.filter((r) => r === 'burned')).toHaveLength(12 - MAX);
  });

  it('of 10 concurrent issues for one key, one creates and the rest meet the cooldown', async () => {
    const { key, request } = subject();
    const stores = [store, ...fx.peers(3)];
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => stores[i % stores.length].issue(key, request(t0))));
    expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'cooldown')).toHaveLength(9);
  });

  it('a record disappears once both its expiry and its cooldown have passed (real clock)', async () => {
    const { key } = subject();
    const now = Date.now();
    const generation = 'short-lived';
    // The cooldown outlasts the expiry by a second, so a loaded machine still reads in between.
    await store.issue(key, { now, ttlMs: 150, resendMs: 1_200, maxAttempts: MAX, generation, hash: crypto.hash(key, '1'), sealed: 'x' });
    await new Promise((r) => setTimeout(r, Math.max(0, now + 200 - Date.now())));
    // Expired, but the cooldown still holds it.
    expect(await store.get(key)).toMatchObject({ generation });
    await vi.waitFor(async () => expect(await store.get(key)).toBeNull(), { timeout: 5_000, interval: 25 });
  });

  it('records past their expiry and cooldown leave the store without any read (real clock)', async () => {
    const now = Date.now();
    for (let i = 0; i < 20; i++) {
      const { key } = subject();
      await store.issue(key, { now, ttlMs: 500, resendMs: 800, maxAttempts: MAX, generation: `g${i}`, hash: crypto.hash(key, '1'), sealed: 'x' });
    }
    const kept = subject();
    await store.issue(kept.key, kept.request(now));
    expect(await fx.heldRecords()).toBe(21);
    await vi.waitFor(async () => expect(await fx.heldRecords()).toBe(1), { timeout: 5_000, interval: 25 });
    expect(await store.get(kept.key)).not.toBeNull();
  });

  it('returns copies: mutating a result does not change the stored record', async () => {
    const { key, request } = subject();
    await store.issue(key, request(t0));
    const got = (await store.get(key))!;
    got.attempts = 99;
    expect((await store.get(key))!.attempts).toBe(0);
  });
}

describe.each([
  ['memory', memoryFixture],
  ['redis', () => redisFixture(ctx)],
  ['redis sentinel', () => redisFixture(sentinel)],
] as const)('CodeStore contract: %s', contract);

describe.skipIf(!CLUSTER_SAFE)(`CodeStore contract: redis cluster${CLUSTER_SKIP_REASON}`, () => {
  const cluster = useContractRedis('cluster');
  contract('redis cluster', () => redisFixture(cluster));
});

describe('RedisCodeStore specifics', () => {
  const prefix = uniquePrefix('code-layout');

  afterAll(async () => {
    await deleteByPrefix(ctx.redis, prefix);
  });

  it('uses the documented key layout, no address in the key, and expires at max(expiry, cooldown)', async () => {
    const store = new RedisCodeStore(ctx.redis, { prefix });
    const email = 'layout@example.com';
    const key = crypto.recordKey('login', 'email', email);
    const now = Date.now();
    const generation = 'gen-1';
    await store.issue(key, { now, ttlMs: TTL, resendMs: RESEND, maxAttempts: MAX, generation, hash: crypto.hash(key, '123456'), sealed: crypto.seal('123456', key, generation) });
    const [redisKey] = await ctx.redis.keys(`${prefix}*`);
    expect(redisKey).toBe(`${prefix}code:${key}`);
    expect(redisKey).toMatch(/^t:code-layout:[0-9a-f]+:code:login:email:[A-Za-z0-9_-]{43}$/);
    expect(redisKey).not.toContain('layout@');
    const hash = await ctx.redis.hgetall(redisKey);
    expect(Object.keys(hash).sort()).toEqual(['attempts', 'createdAt', 'delivery', 'expiresAt', 'generation', 'hash', 'lastSentAt', 'sealed', 'sends']);
    expect(JSON.stringify(hash)).not.toContain('123456');
    expect(hash.expiresAt).toBe(String(now + TTL));
    expect(await ctx.redis.pexpiretime(redisKey)).toBe(now + TTL);
  });
});
