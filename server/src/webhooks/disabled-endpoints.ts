import type { Redis } from 'ioredis';
import type { RedisKeys } from '../store/keys.js';

/**
 * Endpoints that answered `410 Gone`: no event is queued for them and queued deliveries are
 * dropped. Shared by every process in Redis mode (a set), per process in embedded mode.
 */
export interface DisabledEndpoints {
  has(url: string): Promise<boolean>;
  /** Resolves true when the endpoint was not disabled before. */
  add(url: string): Promise<boolean>;
  all(): Promise<Set<string>>;
}

export class MemoryDisabledEndpoints implements DisabledEndpoints {
  private readonly urls = new Set<string>();

  async has(url: string): Promise<boolean> {
    return this.urls.has(url);
  }

  async add(url: string): Promise<boolean> {
    if (this.urls.has(url)) return false;
    this.urls.add(url);
    return true;
  }

  async all(): Promise<Set<string>> {
    return new Set(this.urls);
  }
}

/** The set `keys.webhookDisabled()`, shared by every process. */
export class RedisDisabledEndpoints implements DisabledEndpoints {
  /** The set's key, e.g. `handoff:webhooks:disabled`. */
  readonly key: string;

  constructor(
    private readonly client: Redis,
    keys: RedisKeys,
  ) {
    this.key = keys.webhookDisabled();
  }

  async has(url: string): Promise<boolean> {
    return (await this.client.sismember(this.key, url)) === 1;
  }

  async add(url: string): Promise<boolean> {
    return (await this.client.sadd(this.key, url)) === 1;
  }

  async all(): Promise<Set<string>> {
    return new Set(await this.client.smembers(this.key));
  }
}
