import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import { HandoffError } from '../errors.js';

/** Names a limiter's keys; store/keys.ts's RedisKeys is one (kept structural so lib/ imports nothing of store/). */
export interface LimitKeys {
  /** rate-limiter-flexible's `keyPrefix` for the limit `name`. */
  rateLimit(name: string): string;
}

export interface LimitOptions {
  /** Requests allowed per window. */
  points: number;
  /** Window length, seconds. */
  durationSeconds: number;
  /** Once exceeded, refuse for this long, seconds (default: the rest of the window). */
  blockSeconds?: number;
}

/** One named limit (e.g. "login per IP"). */
export class Limiter {
  constructor(private readonly impl: RateLimiterAbstract) {}

  /** Spend `points` for `key`; throws 429 `rate_limited` (with Retry-After) when over the limit. */
  async consume(key: string, points = 1): Promise<void> {
    try {
      await this.impl.consume(key, points);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        throw new HandoffError('rate_limited', undefined, { retryAfterSeconds: Math.max(1, Math.ceil(err.msBeforeNext / 1000)) });
      }
      throw err;
    }
  }

  /** Points `key` has used in its window, and seconds until it may try again (0: it may now). */
  async status(key: string): Promise<{ used: number; retryAfterSeconds: number }> {
    const res = await this.impl.get(key);
    if (!res) return { used: 0, retryAfterSeconds: 0 };
    const retryAfterSeconds = res.remainingPoints > 0 ? 0 : Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    return { used: res.consumedPoints, retryAfterSeconds };
  }

  /** Forget `key` (e.g. after a successful login). */
  async reset(key: string): Promise<void> {
    await this.impl.delete(key);
  }
}

/**
 * Creates limiters on the backend's store: Redis (shared by every node) or memory (one process),
 * via rate-limiter-flexible.
 */
export class RateLimits {
  constructor(
    private readonly redis: Redis | undefined,
    /** Names the limiters' keys (`keys.rateLimit(name)`), in memory too. */
    private readonly keys: LimitKeys,
  ) {}

  create(name: string, opts: LimitOptions): Limiter {
    const common = {
      keyPrefix: this.keys.rateLimit(name),
      points: opts.points,
      duration: opts.durationSeconds,
      blockDuration: opts.blockSeconds ?? 0,
    };
    return new Limiter(this.redis ? new RateLimiterRedis({ ...common, storeClient: this.redis }) : new RateLimiterMemory(common));
  }
}
