import type { Redis } from 'ioredis';
import type { UserRecord, UserStore } from './user-store.js';
import { RedisKeys } from '../store/keys.js';
import { defineScripts } from '../store/lua-scripts.js';

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
 * and avatarUrl when not null); email index `keys.userByEmail(email)` → id. Emails are used as
 * given: callers normalise them (normaliseEmail), as with the memory store.
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

  /** Atomic (user-create.lua): SET NX on the email index, then HSET the user hash. */
  async create(user: UserRecord): Promise<'created' | 'email_taken'> {
    const code = await this.cmd.handoffUserCreate(
      this.keys.userByEmail(user.email),
      this.keys.user(user.id),
      user.id,
      ...encodeUser(user),
    );
    switch (code) {
      case UserScriptCode.Created:
        return 'created';
      case UserScriptCode.EmailTaken:
        return 'email_taken';
      default:
        throw new Error(`user-create.lua returned unknown code ${String(code)}`);
    }
  }

  /** One round trip (user-by-email.lua): every login looks its user up by email. */
  async byEmail(email: string): Promise<UserRecord | null> {
    const flat = await this.cmd.handoffUserByEmail(
      this.keys.userByEmail(email),
      ...RedisKeys.forScript(this.keys.userTemplate(), this.redis.options.keyPrefix),
    );
    const hash: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]] = flat[i + 1];
    return decodeUser(hash);
  }

  async byId(id: string): Promise<UserRecord | null> {
    return decodeUser(await this.redis.hgetall(this.keys.user(id)));
  }
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
