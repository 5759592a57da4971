import type { Redis } from 'ioredis';
import type { CodeRecord, CodeStore, Delivery, IssueRequest, IssueResult, VerifyRequest, VerifyResult, WithdrawRequest } from './code-store.js';
import { RedisKeys } from '../store/keys.js';
import { defineScripts } from '../store/lua-scripts.js';

/** Return codes of server/lua/code-issue.lua. */
export enum CodeIssueCode {
  Created = 0,
  Resent = 1,
  Cooldown = 2,
}

/** Return codes of server/lua/code-verify.lua. */
export enum CodeVerifyCode {
  Ok = 0,
  Missing = -1,
  Expired = -2,
  Burned = -3,
  Wrong = -4,
}

const VERIFY_RESULTS: Record<number, VerifyResult> = {
  [CodeVerifyCode.Ok]: 'ok',
  [CodeVerifyCode.Missing]: 'missing',
  [CodeVerifyCode.Expired]: 'expired',
  [CodeVerifyCode.Burned]: 'burned',
  [CodeVerifyCode.Wrong]: 'wrong',
};

export interface RedisCodeStoreOptions {
  /** Where the keys live; default `new RedisKeys(prefix)`. */
  keys?: RedisKeys;
  /** Key prefix when `keys` is not given; default `handoff:`. */
  prefix?: string;
}

type Arg = string | number;
interface CodeCommands {
  handoffCodeIssue(key: string, ...argv: Arg[]): Promise<[number, string | number, number?, string?]>;
  handoffCodeWithdraw(key: string, ...argv: Arg[]): Promise<number>;
  handoffCodeVerify(key: string, ...argv: Arg[]): Promise<number>;
  handoffCodeDelivery(key: string, ...argv: Arg[]): Promise<number>;
}

/**
 * Codes in Redis, one Lua script per atomic operation (server/lua/code-*.lua), with exactly the
 * behaviour of MemoryCodeStore (both run through test/integration/codes-store.contract.test.ts).
 *
 * Keys (store/keys.ts): one hash per code, `keys.code(key)` with key `<purpose>:<channel>:<recipientId>`
 * (the recipient is an HMAC, see CodeCrypto), fields generation, hash, sealed (absent once burned),
 * attempts, createdAt, expiresAt, lastSentAt, sends, delivery. PEXPIREAT at
 * max(expiresAt, lastSentAt + resendMs), from the caller's clock.
 *
 * The Redis connection is shared and owned by the caller (no ioredis `keyPrefix`; use `keys` / `prefix`).
 */
export class RedisCodeStore implements CodeStore {
  private readonly keys: RedisKeys;
  private readonly cmd: Redis & CodeCommands;

  constructor(
    private readonly redis: Redis,
    opts: RedisCodeStoreOptions = {},
  ) {
    this.keys = opts.keys ?? new RedisKeys(opts.prefix);
    this.cmd = defineScripts<CodeCommands>(redis, {
      handoffCodeIssue: ['code-issue', 1],
      handoffCodeVerify: ['code-verify', 1],
      handoffCodeDelivery: ['code-delivery', 1],
      handoffCodeWithdraw: ['code-withdraw', 1],
    });
  }

  async issue(key: string, req: IssueRequest): Promise<IssueResult> {
    const [code, a, b, c] = await this.cmd.handoffCodeIssue(
      this.key(key),
      String(req.now),
      String(req.ttlMs),
      String(req.resendMs),
      String(req.maxAttempts),
      req.generation,
      req.hash,
      req.sealed,
    );
    switch (code) {
      case CodeIssueCode.Created:
        return { outcome: 'created', generation: String(a), expiresAt: Number(b) };
      case CodeIssueCode.Resent:
        return { outcome: 'resent', generation: String(a), expiresAt: Number(b), previousSentAt: Number(c) };
      case CodeIssueCode.Cooldown:
        return { outcome: 'cooldown', retryAfterMs: Number(a) };
      default:
        throw new Error(`code-issue.lua returned unknown code ${String(code)}`);
    }
  }

  async verify(key: string, req: VerifyRequest): Promise<VerifyResult> {
    const code = await this.cmd.handoffCodeVerify(this.key(key), req.hash, String(req.now), String(req.maxAttempts));
    const result = VERIFY_RESULTS[code];
    if (!result) throw new Error(`code-verify.lua returned unknown code ${String(code)}`);
    return result;
  }

  async get(key: string): Promise<CodeRecord | null> {
    const h = await this.redis.hgetall(this.key(key));
    if (h.generation === undefined) return null;
    return {
      generation: h.generation,
      hash: h.hash,
      sealed: h.sealed ?? null,
      attempts: Number(h.attempts),
      createdAt: Number(h.createdAt),
      expiresAt: Number(h.expiresAt),
      lastSentAt: Number(h.lastSentAt),
      sends: Number(h.sends),
      delivery: h.delivery as Delivery,
    };
  }

  async withdraw(key: string, req: WithdrawRequest): Promise<boolean> {
    const reply = await this.cmd.handoffCodeWithdraw(
      this.key(key),
      req.generation,
      String(req.sentAt),
      req.previousSentAt === undefined ? '' : String(req.previousSentAt),
      String(req.resendMs),
    );
    return reply === 1;
  }

  async setDelivery(key: string, generation: string, delivery: Delivery): Promise<boolean> {
    return (await this.cmd.handoffCodeDelivery(this.key(key), generation, delivery)) === 1;
  }

  private key(key: string): string {
    return this.keys.code(key);
  }
}
