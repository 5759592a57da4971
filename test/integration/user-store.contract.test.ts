/**
 * One behaviour, two implementations: MemoryUserStore and RedisUserStore (a private redis-server
 * from the harness) run through the same tests.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryUserStore } from '../../server/src/users/memory-user-store.js';
import { RedisUserStore } from '../../server/src/users/redis-user-store.js';
import { keySlot } from '../../server/src/store/key-slot.js';
import { mintUserId, RedisKeys, userShard } from '../../server/src/store/keys.js';
import type { UserRecord, UserStore } from '../../server/src/users/user-store.js';
import { uniquePrefix } from '../harness/redis-server.js';
import { deleteByPrefix, memoryStoreFixture, redisStoreFixture, useContractRedis, CLUSTER_SAFE, CLUSTER_SKIP_REASON, type ContractRedis, type StoreFixture } from '../harness/store-contract.js';

const ctx = useContractRedis();
const sentinel = useContractRedis('sentinel');
type Fixture = StoreFixture<UserStore>;
const memoryFixture = (): Fixture => memoryStoreFixture<UserStore>(new MemoryUserStore());
const redisFixture = (c: ContractRedis): Fixture => redisStoreFixture<UserStore>(c, 'user', (conn, prefix) => new RedisUserStore(conn, { prefix }));

function user(overrides: Partial<UserRecord> = {}): UserRecord {
  const id = randomBytes(12).toString('base64url');
  return {
    id,
    email: `${id.toLowerCase()}@example.com`,
    displayName: 'Ana Ñuñez 🚀',
    avatarUrl: null,
    passwordHash: '$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234',
    createdAt: 1_767_225_600_123,
    ...overrides,
  };
}

/** The contract, on one store: memory, or Redis on each topology (the describe blocks below). */
function contract(_name: string, makeFixture: () => Fixture): void {
  let fx: Fixture;
  let store: UserStore;

  beforeEach(() => {
    fx = makeFixture();
    store = fx.store;
  });

  afterEach(async () => {
    await fx.cleanup();
  });

  it('creates a user readable by id and by email', async () => {
    const u = user();
    expect(await store.create(u)).toBe('created');
    expect(await store.byId(u.id)).toEqual(u);
    expect(await store.byEmail(u.email)).toEqual(u);
    expect(typeof (await store.byId(u.id))!.createdAt).toBe('number');
  });

  it('keeps avatarUrl: null stays null, a URL stays the URL', async () => {
    const withNull = user({ avatarUrl: null });
    const withUrl = user({ avatarUrl: 'https://example.com/a.png?x=1&y=2' });
    await store.create(withNull);
    await store.create(withUrl);
    expect((await store.byId(withNull.id))!.avatarUrl).toBeNull();
    expect((await store.byId(withUrl.id))!.avatarUrl).toBe('https://example.com/a.png?x=1&y=2');
  });

  it('answers null for an unknown id or email', async () => {
    await store.create(user());
    expect(await store.byId('no-such-id')).toBeNull();
    expect(await store.byEmail('nobody@example.com')).toBeNull();
  });

  it('a duplicate email → email_taken, and the first user is kept', async () => {
    const first = user({ email: 'dup@example.com' });
    const second = user({ email: 'dup@example.com', displayName: 'Other' });
    expect(await store.create(first)).toBe('created');
    expect(await store.create(second)).toBe('email_taken');
    expect(await store.byEmail('dup@example.com')).toEqual(first);
    expect(await store.byId(second.id)).toBeNull();
  });

  it('of 10 concurrent creates with one email exactly one is created', async () => {
    const stores = [store, ...fx.peers(3)];
    const users = Array.from({ length: 10 }, (_, i) => user({ email: 'race@example.com', displayName: `U${i}` }));
    const results = await Promise.all(users.map((u, i) => stores[i % stores.length].create(u)));
    expect(results.filter((r) => r === 'created')).toHaveLength(1);
    expect(results.filter((r) => r === 'email_taken')).toHaveLength(9);
    const winner = users[results.indexOf('created')];
    expect(await store.byEmail('race@example.com')).toEqual(winner);
    for (const loser of users.filter((u) => u !== winner)) expect(await store.byId(loser.id)).toBeNull();
  });

  it('returns copies: mutating a result does not change the stored user', async () => {
    const u = user();
    await store.create(u);
    const got = (await store.byId(u.id))!;
    got.displayName = 'Changed';
    expect(await store.byId(u.id)).toEqual(u);
  });
}

describe.each([
  ['memory', memoryFixture],
  ['redis', () => redisFixture(ctx)],
  ['redis sentinel', () => redisFixture(sentinel)],
] as const)('UserStore contract: %s', contract);

describe.skipIf(!CLUSTER_SAFE)(`UserStore contract: redis cluster${CLUSTER_SKIP_REASON}`, () => {
  const cluster = useContractRedis('cluster');
  contract('redis cluster', () => redisFixture(cluster));
});

describe('RedisUserStore specifics', () => {
  const prefix = uniquePrefix('user-layout');

  afterAll(async () => {
    await deleteByPrefix(ctx.redis, prefix);
  });

  it('uses the documented key layout: the hash in the shard of the id, the index in the shard of the email', async () => {
    const store = new RedisUserStore(ctx.redis, { prefix });
    const u = user();
    await store.create(u);
    expect(await ctx.redis.get(`${prefix}user-email:{u${userShard(u.email)}}:${u.email}`)).toBe(u.id);
    expect(await ctx.redis.hgetall(`${prefix}user:{u${userShard(u.id)}}:${u.id}`)).toEqual({
      id: u.id,
      email: u.email,
      displayName: u.displayName,
      passwordHash: u.passwordHash,
      createdAt: String(u.createdAt),
    });
  });

  it('an id minted for the email shares its shard, so both keys are in one hash slot', async () => {
    const keys = new RedisKeys(prefix);
    for (let i = 0; i < 20; i++) {
      const email = `minted-${i}@example.com`;
      const id = mintUserId(email);
      expect(id).toMatch(/^[\w-]{32}$/);
      expect(keySlot(keys.user(id))).toBe(keySlot(keys.userByEmail(email)));
    }
    const store = new RedisUserStore(ctx.redis, { prefix });
    const email = 'minted@example.com';
    const u = user({ id: mintUserId(email), email });
    expect(await store.create(u)).toBe('created');
    expect(await store.byEmail(email)).toEqual(u);
    expect(await store.create(user({ id: mintUserId(email), email }))).toBe('email_taken');
  });

  it('reads accounts stored before the shards, and counts their emails as taken', async () => {
    const store = new RedisUserStore(ctx.redis, { prefix });
    const old = user();
    await ctx.redis.set(`${prefix}user-email:${old.email}`, old.id);
    await ctx.redis.hset(`${prefix}user:${old.id}`, { id: old.id, email: old.email, displayName: old.displayName, passwordHash: old.passwordHash, createdAt: String(old.createdAt) });
    expect(await store.byId(old.id)).toEqual(old);
    expect(await store.byEmail(old.email)).toEqual(old);
    expect(await store.create(user({ email: old.email }))).toBe('email_taken');
    expect(await store.byEmail(old.email)).toEqual(old);
  });
});
