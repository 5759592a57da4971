/**
 * Every Redis key is built in server/src/store/keys.ts (RedisKeys) and lives under REDIS_PREFIX:
 * what a Redis-mode backend writes is checked against the documented layout, and the source tree
 * is checked for keys built anywhere else.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/src/config.js';
import { RedisLoginCounters } from '../../server/src/login/login-counters.js';
import { openBackend, type Backend } from '../../server/src/store/backend.js';
import clusterKeySlot from 'cluster-key-slot';
import { keySlot } from '../../server/src/store/key-slot.js';
import { DEFAULT_REDIS_PREFIX, FLOW_SHARDS, flowShard, mintUserId, RedisKeys, USER_SHARDS } from '../../server/src/store/keys.js';
import { RedisDisabledEndpoints } from '../../server/src/webhooks/disabled-endpoints.js';
import { uniquePrefix } from '../harness/redis-server.js';
import { useContractRedis } from '../harness/store-contract.js';

const ctx = useContractRedis();
const SERVER_SRC = fileURLToPath(new URL('../../server/src/', import.meta.url));
const LUA_DIR = fileURLToPath(new URL('../../server/lua/', import.meta.url));

describe('RedisKeys', () => {
  const keys = new RedisKeys('p:');

  it('puts every key, channel and queue prefix under the prefix', () => {
    const all = [
      keys.flow('qr', 'id1'),
      keys.flowTaken('login', 'id1'),
      keys.dueSet(0),
      keys.dueSet(15),
      keys.loginTickets(),
      keys.loginTakenCount(0),
      keys.legacyLoginTakenCount(),
      keys.user('u1'),
      keys.userByEmail('a@example.com'),
      keys.code('login:email:r1'),
      keys.rateLimit('login-ip'),
      keys.webhookDisabled(),
      keys.adapterChannel(),
    ];
    for (const key of all) expect(key.startsWith('p:'), key).toBe(true);
    expect(keys.bullPrefix()).toBe('{p:bull}');
    all.push(keys.bullPrefix());
    expect(new Set(all).size).toBe(all.length);
  });

  it('defaults the prefix to handoff:', () => {
    expect(DEFAULT_REDIS_PREFIX).toBe('handoff:');
    expect(new RedisKeys().flow('qr', 'x')).toBe(`handoff:flow:{s${flowShard('x')}}:qr:x`);
  });

  it('refuses a prefix with braces (it would move the hash tags)', () => {
    expect(() => new RedisKeys('a{b}:')).toThrow(/must not contain \{ or \}/);
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_PREFIX: 'x{' })).toThrow(/REDIS_PREFIX/);
  });

  it('puts a flow, its taken marker, its due shard and its taken counter in one hash slot', () => {
    for (let i = 0; i < 200; i++) {
      const id = `flow-${i}`;
      const slot = keySlot(keys.flow('login', id));
      expect([keys.flowTaken('login', id), keys.dueSetOf(id), keys.loginTakenCountOf(id)].map(keySlot)).toEqual([slot, slot, slot]);
      expect(keySlot(keys.dueSet(flowShard(id)))).toBe(slot);
    }
  });

  it('spreads the 16 due shards over 16 slots, and user shards over 256', () => {
    expect(new Set(Array.from({ length: FLOW_SHARDS }, (_, s) => keySlot(keys.dueSet(s)))).size).toBe(FLOW_SHARDS);
    expect(new Set(Array.from({ length: 5000 }, (_, i) => keySlot(keys.user(`user-${i}`)))).size).toBe(USER_SHARDS);
  });

  it('computes Redis Cluster slots as cluster-key-slot (what ioredis routes by) does', () => {
    for (const key of ['a', 'handoff:flow:{s3}:qr:abc', '{u7}x', 'x{a}y{b}', 'é🚀x', '123456789']) expect(keySlot(key), key).toBe(clusterKeySlot(key));
    expect(keySlot('123456789')).toBe(0x31c3 & 16383);
  });

  it('makes in a script the same keys it makes in TypeScript (templates)', () => {
    const id = 'abc';
    const flow = keys.flowTemplate(flowShard(id));
    expect(flow.before + keys.dueMember('login', id) + flow.after).toBe(keys.flow('login', id));
    const email = 'ana@example.com';
    const minted = mintUserId(email);
    const user = keys.userTemplate(email);
    expect(user.before + minted + user.after).toBe(keys.user(minted));
    expect(RedisKeys.forScript(flow, 'conn:')).toEqual(['conn:' + flow.before, flow.after]);
  });

  it('reads a due-set member back into its flow (ids may hold anything but the first colon)', () => {
    expect(keys.parseDueMember(keys.dueMember('qr', 'a-b_c'))).toEqual({ kind: 'qr', id: 'a-b_c' });
  });
});

describe('a Redis-mode backend', () => {
  const prefix = uniquePrefix('layout');
  let backend: Backend | undefined;

  afterAll(async () => {
    await backend?.close();
  });

  it('writes every key under REDIS_PREFIX, in the documented layout', async () => {
    backend = await openBackend(loadConfig({ REDIS_URL: ctx.server.url, REDIS_PREFIX: prefix }), pino({ level: 'silent' }));
    const { keys, redis } = backend;
    const client = redis!.client;
    const now = Date.now();
    const flow = { version: 1, createdAt: now, expiresAt: now + 60_000, watchTokenHash: 'ab'.repeat(32) };

    await backend.flows.create({ ...flow, kind: 'qr', id: 'qr-layout-0000001', state: 'pending' }, 60_000);
    await backend.flows.create({ ...flow, kind: 'login', id: 'login-layout-00001', state: 'queued' }, 60_000);
    const counters = new RedisLoginCounters(client, keys);
    await counters.nextTicket();
    expect(await counters.markTaken('login-layout-00001')).toBe(1);
    await backend.users.create({
      id: 'user-layout-1', email: 'layout@example.com', displayName: 'L', avatarUrl: null, passwordHash: 'x', createdAt: now,
    });
    await backend.codes.issue('login:email:recipient', {
      now, ttlMs: 60_000, resendMs: 30_000, maxAttempts: 5, generation: 'g1', hash: 'ab'.repeat(32), sealed: 's',
    });
    await backend.limits.create('layout', { points: 5, durationSeconds: 60 }).consume('203.0.113.7');
    await new RedisDisabledEndpoints(client, keys).add('https://hooks.example/gone');
    await backend.queues.create<{ n: number }>('layout').add({ n: 1 });

    const written: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await ctx.redis.scan(cursor, 'COUNT', 1000);
      written.push(...batch);
      cursor = next;
    } while (cursor !== '0');

    const p = escape(prefix);
    const layout = [
      `${p}flow:\\{s(\\d|1[0-5])\\}:(qr|login):[^:]+`,
      `${p}flow:\\{s(\\d|1[0-5])\\}:login:[^:]+:taken`,
      `${p}flows:due:\\{s(\\d|1[0-5])\\}`,
      `${p}login:tickets`,
      `${p}login:taken:\\{s(\\d|1[0-5])\\}`,
      `${p}user:\\{u\\d{1,3}\\}:[^:]+`,
      `${p}user-email:\\{u\\d{1,3}\\}:.+`,
      `${p}code:.+`,
      `${p}rl:layout:.+`,
      `${p}webhooks:disabled`,
      `\\{${p}bull\\}:layout:.+`,
    ].map((pattern) => new RegExp(`^${pattern}$`));
    const ours = written.filter((k) => k.startsWith(prefix) || k.startsWith(`{${prefix}`));
    expect(ours.length).toBeGreaterThan(0);
    for (const key of written) {
      if (!(key.startsWith('t:') || key.startsWith('{t:')) || ours.includes(key)) {
        expect(layout.some((re) => re.test(key)), `${key} is under ${prefix} and in the documented layout`).toBe(true);
      }
    }
    // Each kind of key was written (so the check above covered them all).
    for (const re of layout) expect(ours.some((k) => re.test(k)), String(re)).toBe(true);
  });
});

describe('the source tree', () => {
  /** Text of every .ts file under server/src but keys.ts. */
  function sources(): Array<{ file: string; text: string }> {
    const out: Array<{ file: string; text: string }> = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts') && relative(SERVER_SRC, path) !== join('store', 'keys.ts')) out.push({ file: relative(SERVER_SRC, path), text: readFileSync(path, 'utf8') });
      }
    };
    walk(SERVER_SRC);
    return out;
  }

  it('builds no Redis key outside store/keys.ts', () => {
    const fragments = ['flow:', 'flows:due', 'login:tickets', 'login:taken', 'user:', 'user-email:', 'code:', 'rl:', 'webhooks:disabled', ':taken'];
    const keyLiteral = new RegExp(`[\`'"}](${fragments.map(escape).join('|')})(\\$\\{|[\`'"])`);
    const offences: string[] = [];
    for (const { file, text } of sources()) {
      text.split('\n').forEach((line, i) => {
        const where = `${file}:${i + 1}: ${line.trim()}`;
        if (/\$\{[^}]*[pP]refix[^}]*\}/.test(line)) offences.push(`prefix in a template: ${where}`);
        if (/[pP]refix\s*\+|\+\s*[\w.]*[pP]refix\b/.test(line)) offences.push(`prefix concatenated: ${where}`);
        if (keyLiteral.test(line)) offences.push(`key name: ${where}`);
        if (/\}(socket\.io|bull)\b/.test(line)) offences.push(`channel or queue prefix: ${where}`);
        if (/['"`]\{[su]\$?\{?/.test(line) || /\{[su]\d+\}/.test(line)) offences.push(`hash tag: ${where}`);
      });
    }
    expect(offences).toEqual([]);
  });

  it('has no Lua script make a key but from a template it was given', () => {
    for (const file of readdirSync(LUA_DIR)) {
      const code = readFileSync(join(LUA_DIR, file), 'utf8').replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/--.*$/gm, '');
      // A key name in a string literal ('flow:', "user:"…) would be a key built here.
      expect(code, file).not.toMatch(/['"][\w-]*:['"]/);
      // The only concatenations are template halves from ARGV around a value the script read.
      for (const [concat] of code.matchAll(/\S+\s*\.\.\s*\S+(\s*\.\.\s*\S+)*/g)) {
        expect(concat, file).toMatch(/^(before \.\. member \.\. after|ARGV\[1\] \.\. id \.\. ARGV\[2\])\)?,?$/);
      }
    }
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
