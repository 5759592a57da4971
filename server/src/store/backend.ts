import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { CodeStore } from '../codes/code-store.js';
import { MemoryCodeStore } from '../codes/memory-code-store.js';
import { RedisCodeStore } from '../codes/redis-code-store.js';
import type { FlowStore } from '../flows/flow-store.js';
import { MemoryFlowStore } from '../flows/memory-flow-store.js';
import { RedisFlowStore } from '../flows/redis-flow-store.js';
import { MemoryUserStore } from '../users/memory-user-store.js';
import { RedisUserStore } from '../users/redis-user-store.js';
import type { UserStore } from '../users/user-store.js';
import { RateLimits } from '../http/rate-limits.js';
import { BullQueueFactory } from '../queue/bullmq-queue.js';
import type { QueueFactory } from '../queue/job-queue.js';
import { MemoryQueueFactory } from '../queue/memory-queue.js';

/** The stores and connections of one mode: embedded (in memory) or Redis. */
export interface Backend {
  mode: 'embedded' | 'redis';
  flows: FlowStore;
  users: UserStore;
  /** Verification codes (server/src/codes). */
  codes: CodeStore;
  /** Job queues: BullMQ in Redis mode, in-process in embedded mode. */
  queues: QueueFactory;
  /** Rate limiters on the same store. */
  limits: RateLimits;
  /** Redis mode: the command connection, and a publisher/subscriber pair for the Socket.IO adapter. */
  redis?: { client: Redis; pub: Redis; sub: Redis };
  close(): Promise<void>;
}

/**
 * Open the backend the config asks for. In Redis mode commands fail fast while Redis is down
 * (no offline queue: a request answers 503 instead of hanging) and reconnect by themselves.
 */
export async function openBackend(config: Config, log: Logger): Promise<Backend> {
  if (!config.redisUrl) {
    const queues = new MemoryQueueFactory();
    return {
      mode: 'embedded',
      flows: new MemoryFlowStore(),
      users: new MemoryUserStore(),
      codes: new MemoryCodeStore(),
      queues,
      limits: new RateLimits(undefined, config.redisPrefix),
      close: () => queues.close(),
    };
  }
  const retryStrategy = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000);
  const client = new Redis(config.redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy,
  });
  let lastError = '';
  client.on('error', (err: Error) => {
    if (err.message !== lastError) log.warn({ err: err.message }, 'redis error');
    lastError = err.message;
  });
  client.on('ready', () => {
    if (lastError) log.info('redis connection restored');
    lastError = '';
  });
  await client.connect();
  // The adapter's connections keep an offline queue so their (p)subscriptions survive reconnects.
  const pub = new Redis(config.redisUrl, { retryStrategy, maxRetriesPerRequest: 1 });
  const sub = new Redis(config.redisUrl, { retryStrategy, maxRetriesPerRequest: null });
  for (const c of [pub, sub]) c.on('error', () => {}); // reported once through `client`
  const prefix = config.redisPrefix;
  const queues = new BullQueueFactory({ url: config.redisUrl, prefix: `${prefix}bull`, lockDurationMs: config.queueLockMs });
  return {
    mode: 'redis',
    flows: new RedisFlowStore(client, { prefix }),
    users: new RedisUserStore(client, { prefix }),
    codes: new RedisCodeStore(client, { prefix }),
    queues,
    limits: new RateLimits(client, prefix),
    redis: { client, pub, sub },
    async close() {
      await queues.close();
      await Promise.allSettled([client.quit(), pub.quit(), sub.quit()]);
    },
  };
}
