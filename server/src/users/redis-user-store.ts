import type { Redis } from 'ioredis';
import type { UserRecord, UserStore } from './user-store.js';
import { RedisKeys, userShard } from '../store/keys.js';
import { defineScripts } from '../store/lua-scripts.js';
import { execPipeline } from '../store/redis-connection.js';

/** Return codes of server/lua/user-create.lua. */
export enum UserScriptCode {
  Created = 0,
  EmailTaken = -1,
}

export interface RedisUserStoreOptions {
  /** Where the keys live; default `new RedisKeys(prefix)`. */
  keys?: RedisKeys;
  /** Key prefix when `keys` is not given; default `handoff:`. */
  prefix?: string;
}

interface UserCommands {
  handoffUserCreate(emailKey: string, userKey: string, ...argv: string[]): Promise<number>;
  handoffUserByEmail(emailKey: string, userKeyBefore: string, userKeyAfter: string): Promise<string[]>;
}

/**
 * Users in Redis, with exactly the behaviour of MemoryUserStore (both run through
 * test/integration/user-store.contract.test.ts).
 *
 * Keys (store/keys.ts): user hash `keys.user(id)` (id, email, displayName, passwordHash, createdAt,
 * and avatarUrl when not null) in the shard of the id; email index `keys.userByEmail(email)` → id
 * in the shard of the email. Emails are used as given: callers normalise them (normaliseEmail), as
 * with the memory store.
 *
 * Ids Handoff mints (mintUserId) share their email's shard: create is one user-create.lua call
 * and byEmail one user-by-email.lua call, each in one hash slot (Redis Cluster). An id from
 * elsewhere (another shard) is created in two single-slot steps, hash first, index second (SET NX;
 * the loser deletes its hash), so a crash in between leaves only an unreachable hash.
 *
 * Read-through: accounts written before the shards (`keys.legacyUser`, `keys.legacyUserByEmail`)
 * are found when the sharded keys are missing, and their email counts as taken (docs/operations.md
 * "Upgrading to the sharded key layout"); new accounts are always written in the sharded layout.
 *
 * The Redis connection is shared and owned by the caller (no ioredis `keyPrefix`; use `keys` / `prefix`);
 * this store never closes it.
 */
export class RedisUserStore implements UserStore {
  private readonly keys: RedisKeys;
  private readonly cmd: Redis & UserCommands;

  constructor(
    private readonly redis: Redis,
    opts: RedisUserStoreOptions = {},
  ) {
    this.keys = opts.keys ?? new RedisKeys(opts.prefix);
    this.cmd = defineScripts<UserCommands>(redis, { handoffUserCreate: ['user-create', 2], handoffUserByEmail: ['user-by-email', 1] });
  }

  /** Atomic when the id shares the email's shard (user-create.lua: SET NX on the email index, then HSET the user hash). */
  async create(user: UserRecord): Promise<'created' | 'email_taken'> {
    if ((await this.redis.exists(this.keys.legacyUserByEmail(user.email))) === 1) return 'email_taken';
    const emailKey = this.keys.userByEmail(user.email);
    const userKey = this.keys.user(user.id);
    if (userShard(user.id) !== userShard(user.email)) return this.createAcrossShards(user, emailKey, userKey);
    const code = await this.cmd.handoffUserCreate(emailKey, userKey, user.id, ...encodeUser(user));
    switch (code) {
      case UserScriptCode.Created:
        return 'created';
      case UserScriptCode.EmailTaken:
        return 'email_taken';
      default:
        throw new Error(`user-create.lua returned unknown code ${String(code)}`);
    }
  }

  /** One round trip for minted ids (user-by-email.lua); a second for an id of another shard or a legacy account. */
  async byEmail(email: string): Promise<UserRecord | null> {
    const flat = await this.cmd.handoffUserByEmail(
      this.keys.userByEmail(email),
      ...RedisKeys.forScript(this.keys.userTemplate(email), this.redis.options.keyPrefix),
    );
    if (flat.length === 1) return this.byId(flat[0]);
    if (flat.length > 0) return decodeUser(pairsToObject(flat));
    const legacyId = await this.redis.get(this.keys.legacyUserByEmail(email));
    return legacyId === null ? null : this.byId(legacyId);
  }

  async byId(id: string): Promise<UserRecord | null> {
    const user = decodeUser(await this.redis.hgetall(this.keys.user(id)));
    return user ?? decodeUser(await this.redis.hgetall(this.keys.legacyUser(id)));
  }

  /** The id is in another shard than the email: hash first, then claim the email; the loser removes its hash. */
  private async createAcrossShards(user: UserRecord, emailKey: string, userKey: string): Promise<'created' | 'email_taken'> {
    for (const [err] of await execPipeline(this.redis.multi().del(userKey).hset(userKey, ...encodeUser(user)))) if (err) throw err;
    if ((await this.redis.set(emailKey, user.id, 'NX')) === 'OK') return 'created';
    await this.redis.del(userKey);
    return 'email_taken';
  }
}

function pairsToObject(flat: string[]): Record<string, string> {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]] = flat[i + 1];
  return hash;
}

function encodeUser(u: UserRecord): string[] {
  const out = [
    'id', u.id,
    'email', u.email,
    'displayName', u.displayName,
    'passwordHash', u.passwordHash,
    'createdAt', String(u.createdAt),
  ];
  if (u.avatarUrl !== null && u.avatarUrl !== undefined) out.push('avatarUrl', u.avatarUrl);
  return out;
}

function decodeUser(h: Record<string, string>): UserRecord | null {
  if (h.id === undefined) return null;
  return {
    id: h.id,
    email: h.email,
    displayName: h.displayName,
    avatarUrl: h.avatarUrl ?? null,
    passwordHash: h.passwordHash,
    createdAt: Number(h.createdAt),
  };
}
