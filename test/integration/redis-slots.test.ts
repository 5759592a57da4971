/**
 * Redis Cluster refuses a script or a multi-key command whose keys are in more than one hash slot
 * (CROSSSLOT). Every command a Redis-mode backend sends is caught here (ioredis's sendCommand, on
 * every connection: the stores', the rate limits', BullMQ's) while each store does its work, and
 * the slots of its keys are checked with cluster-key-slot, the function ioredis's Cluster client
 * routes by. The Lua scripts are named by their SHA, so the test also shows each one was called.
 */
import { groupShard, mintFlowIdInShard } from '../../server/src/store/keys.js';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import clusterKeySlot from 'cluster-key-slot';
import { Redis, type Command } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/src/config.js';
import { openBackend, type Backend } from '../../server/src/store/backend.js';
import { mintUserId } from '../../server/src/store/keys.js';
import { luaScript } from '../../server/src/store/lua-scripts.js';
import { RedisDisabledEndpoints } from '../../server/src/webhooks/disabled-endpoints.js';
import { uniquePrefix } from '../harness/redis-server.js';
import { deleteByPrefix, useContractRedis } from '../harness/store-contract.js';

const ctx = useContractRedis();
const LUA_FILES = readdirSync(new URL('../../server/lua/', import.meta.url)).map((f) => f.replace(/\.lua$/, ''));

interface Sent {
  name: string;
  keys: string[];
}

describe('every command a Redis-mode backend sends touches one hash slot', () => {
  const prefix = uniquePrefix('slots');
  const sent: Sent[] = [];
  const original = Redis.prototype.sendCommand;
  let backend: Backend;

  beforeAll(async () => {
    const scriptBySha = new Map(LUA_FILES.map((f) => [createHash('sha1').update(luaScript(f)).digest('hex'), f]));
    Redis.prototype.sendCommand = function (this: Redis, command: Command, ...rest: unknown[]) {
      const keys = command.getKeys().map(String);
      let name = command.name;
      if (name === 'evalsha' || name === 'eval') {
        const [first] = command.args;
        const sha = name === 'eval' ? createHash('sha1').update(String(first)).digest('hex') : String(first);
        name = `${name} ${scriptBySha.get(sha) ?? `bullmq/${sha.slice(0, 8)}`}`;
      }
      sent.push({ name, keys });
      return (original as (...a: unknown[]) => unknown).call(this, command, ...rest);
    } as typeof Redis.prototype.sendCommand;
    backend = await openBackend(loadConfig({ REDIS_URL: ctx.server.url, REDIS_PREFIX: prefix }), pino({ level: 'silent' }));
  });

  afterAll(async () => {
    Redis.prototype.sendCommand = original;
    await backend?.close();
    await deleteByPrefix(ctx.redis, prefix);
    await deleteByPrefix(ctx.redis, `{${prefix}`);
  });

  it('for flows, login counters, users, codes, rate limits, webhooks and queued jobs', async () => {
    const now = Date.now();
    const client = backend.redis!.client;
    for (let i = 0; i < 40; i++) {
      const id = `slot-flow-${i}`;
      const kind = i % 2 ? 'login' : 'qr';
      await backend.flows.create({ kind, id, state: kind === 'qr' ? 'pending' : 'queued', version: 1, createdAt: now, expiresAt: now - 1, watchTokenHash: 'ab'.repeat(32) }, 60_000);
      await backend.flows.get(kind, id);
      if (kind === 'login') {
        await backend.loginCounters.nextTicket();
        await backend.loginCounters.markTaken(id);
      }
    }
    for (const { kind, id } of await backend.flows.dueForExpiry(now, 100)) {
      await backend.flows.transition({ kind, id, to: 'expired', from: ['pending', 'queued'], now, tombstoneMs: 1_000 });
    }
    await backend.loginCounters.taken();
    // Push-to-approve: a user's approvals are capped per user, each minted into the user's group shard.
    for (let i = 0; i < 4; i++) {
      const group = `approval:slot-user-${i % 2}`;
      const id = mintFlowIdInShard(groupShard(group));
      await backend.flows.createCapped({ kind: 'approval', id, state: 'pending', version: 1, createdAt: now, expiresAt: now + 60_000, watchTokenHash: 'ab'.repeat(32) }, 60_000, { group, max: 3 });
      await backend.flows.liveInGroup(group, now);
    }

    for (let i = 0; i < 10; i++) {
      const email = `slot-${i}@example.com`;
      // Minted ids (the normal path) and an id from elsewhere (two single-slot steps).
      const id = i % 2 ? mintUserId(email) : `foreign-${i}`;
      await backend.users.create({ id, email, displayName: 'S', avatarUrl: null, passwordHash: 'x', createdAt: now });
      await backend.users.create({ id: mintUserId(email), email, displayName: 'T', avatarUrl: null, passwordHash: 'x', createdAt: now });
      await backend.users.byEmail(email);
      await backend.users.byId(id);
    }
    await backend.users.byEmail('nobody@example.com');

    const code = { now, ttlMs: 60_000, resendMs: 0, maxAttempts: 5, generation: 'g1', hash: 'ab'.repeat(32), sealed: 's' };
    await backend.codes.issue('login:email:r1', code);
    await backend.codes.setDelivery('login:email:r1', 'g1', 'sent');
    await backend.codes.verify('login:email:r1', { hash: 'cd'.repeat(32), now, maxAttempts: 5 });
    await backend.codes.issue('login:email:r2', code);
    await backend.codes.withdraw('login:email:r2', { generation: 'g1', sentAt: now, resendMs: 0 });
    await backend.codes.verify('login:email:r1', { hash: 'ab'.repeat(32), now, maxAttempts: 5 });

    await backend.limits.create('slots', { points: 5, durationSeconds: 60 }).consume('203.0.113.7');
    const disabled = new RedisDisabledEndpoints(client, backend.keys);
    await disabled.add('https://hooks.example/gone');
    await disabled.has('https://hooks.example/gone');

    const queue = backend.queues.create<{ n: number }>('slots');
    const done = new Promise<void>((resolve) => queue.work(async () => resolve()));
    await queue.add({ n: 1 });
    await done;
    await queue.counts();

    const crossSlot = sent
      .filter((s) => s.keys.length > 1 && new Set(s.keys.map((k) => clusterKeySlot(k))).size > 1)
      .map((s) => `${s.name}: ${s.keys.join(' ')}`);
    expect(crossSlot).toEqual([]);

    // Every Handoff script ran (so each was checked), and BullMQ's did too.
    const names = new Set(sent.map((s) => s.name.replace(/^evalsha |^eval /, '')));
    for (const file of LUA_FILES) expect(names.has(file), `${file}.lua was called`).toBe(true);
    expect([...names].some((n) => n.startsWith('bullmq/'))).toBe(true);
  });
});
