import { EventEmitter } from 'node:events';
import type { Command, Redis } from 'ioredis';
import { toStoreError } from '../errors.js';
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
import { RateLimits } from '../lib/rate-limits.js';
import { MemoryLoginCounters, RedisLoginCounters, type LoginCounters } from '../login/login-counters.js';
import { BullQueueFactory } from '../queue/bullmq-queue.js';
import type { QueueFactory } from '../queue/job-queue.js';
import { MemoryQueueFactory } from '../queue/memory-queue.js';
import { RedisKeys } from './keys.js';
import { createRedisConnection, quitOrDrop, redisConfigOf, type RedisClient } from './redis-connection.js';

/** Which Redis connection: the store's commands, the adapter's publisher/subscriber, or a job queue's. */
export type RedisConnectionName = 'command' | 'pub' | 'sub' | 'queue' | 'queue-worker';

export { REDIS_COMMAND_TIMEOUT_MS } from './redis-connection.js';

/**
 * Watches every Redis connection of a process: counts their `error` events and failed commands
 * (for metrics) and knows their status (for the `handoff_redis_connected` gauge).
 *  - `connection-error` (connection, err): an `error` event of a connection (refused, reset…), as ioredis reports it;
 *  - `command-failed` (connection, command, err): a command rejected (connection down, timeout,
 *    a reply error); NOSCRIPT is left out, ioredis retries those with EVAL by itself.
 * Watching also attaches a handler to every command's promise, so a command nobody awaits (the
 * adapter's fire-and-forget PUBLISH) can never become an unhandled rejection that kills the process.
 * With `translate`, a command that fails without Redis's own reply (connection closed or down,
 * timeout, not writable) or with a failover's reply rejects with a StoreUnavailableError
 * (errors.ts toStoreError): callers tell an outage from a bug by class (errors.ts isStoreDown). For connections Handoff's own code awaits: the store's, and
 * the queue producers'; not the adapter's nor BullMQ's workers', whose libraries read their errors.
 */
export class RedisWatch extends EventEmitter<{
  'connection-error': [connection: RedisConnectionName, err: Error];
  'command-failed': [connection: RedisConnectionName, command: string, err: Error];
  /** A durable flow transition answered without the replicas' ack (REDIS_WAIT_* timed out). */
  unreplicated: [acked: number, wanted: number];
}> {
  readonly connections: Array<{ name: RedisConnectionName; client: RedisClient }> = [];
  /**
   * The promises already seen, not the commands: a command resent from the offline queue keeps its
   * promise (and its wrapped reject), but one a Cluster pipeline sends again after a redirect or a
   * closed connection gets a new promise and a new, plain reject (Command.initPromise), which must
   * be wrapped again: otherwise its "Connection is closed." reaches a caller untranslated (a 500).
   */
  private readonly seen = new WeakSet<Promise<unknown>>();

  watch<C extends RedisClient>(client: C, name: RedisConnectionName, opts: { translate?: boolean } = {}): C {
    this.connections.push({ name, client });
    client.on('error', (err: Error) => this.emit('connection-error', name, err));
    const send = client.sendCommand.bind(client);
    // Every argument passes through: a Cluster's pipeline adds the target node as a third one.
    client.sendCommand = ((command: Command, ...rest: unknown[]) => {
      const first = !this.seen.has(command.promise); // a command resent from the offline queue passes here again
      if (first && opts.translate) {
        const reject = command.reject;
        command.reject = (err: Error) => reject(toStoreError(err));
      }
      const result = (send as (c: Command, ...r: unknown[]) => unknown)(command, ...rest);
      if (first) {
        this.seen.add(command.promise);
        command.promise.catch((err: Error) => {
          if (!/NOSCRIPT/.test(err?.message ?? '')) this.emit('command-failed', name, command.name, err);
        });
      }
      return result;
    }) as typeof client.sendCommand;
    return client;
  }
}

/** The stores and connections of one mode: embedded (in memory) or Redis. */
export interface Backend {
  mode: 'embedded' | 'redis';
  /** Every Redis key, channel and queue prefix, from REDIS_PREFIX (rate limiters use its names in memory too). */
  keys: RedisKeys;
  flows: FlowStore;
  users: UserStore;
  /** Verification codes (server/src/codes). */
  codes: CodeStore;
  /** Job queues: BullMQ in Redis mode, in-process in embedded mode. */
  queues: QueueFactory;
  /** Rate limiters on the same store. */
  limits: RateLimits;
  /** The async-login tickets and the count of jobs taken (queue positions). */
  loginCounters: LoginCounters;
  /**
   * Redis mode: the command connection, a publisher/subscriber pair for the Socket.IO adapter,
   * and the watch over every connection (the queues' included). On Redis Cluster they are
   * ioredis Cluster instances (`client` typed Redis until the stores take a RedisClient).
   */
  redis?: { client: Redis; pub: RedisClient; sub: RedisClient; watch: RedisWatch };
  /** Close the queues (workers let their active jobs finish; idempotent), then the connections. */
  close(): Promise<void>;
}

/**
 * Open the backend the config asks for. In Redis mode commands fail fast while Redis is down
 * (no offline queue: a request answers 503 instead of hanging; a frozen Redis times out after
 * REDIS_COMMAND_TIMEOUT_MS) and every connection reconnects by itself (backoff 50 ms doubling to 1 s: a refused connect is cheap, and every
 * second counts for a browser watching a QR code).
 */
export async function openBackend(config: Config, log: Logger): Promise<Backend> {
  const keys = new RedisKeys(config.redisPrefix);
  const redisConfig = redisConfigOf(config);
  if (!redisConfig) {
    const queues = new MemoryQueueFactory();
    const flows = new MemoryFlowStore();
    const codes = new MemoryCodeStore();
    const loginCounters = new MemoryLoginCounters({ rememberMs: config.loginTtlSeconds * 1000 });
    return {
      mode: 'embedded',
      keys,
      flows,
      users: new MemoryUserStore(),
      codes,
      queues,
      limits: new RateLimits(undefined, keys),
      loginCounters,
      async close() {
        // The queues first (active jobs finish, and may still write), then the stores' purge timers.
        await queues.close();
        await flows.close();
        await codes.close();
        loginCounters.close();
      },
    };
  }

  const watch = new RedisWatch();
  // One Redis, a Sentinel-watched master or a Cluster: the roles' options are in redis-connection.ts.
  const connection = watch.watch(createRedisConnection(redisConfig, 'command'), 'command', { translate: true });
  // A Cluster takes the same commands (and defineCommand) as a Redis; the stores are typed Redis.
  const client = connection as Redis;
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
  // The adapter's connections keep an offline queue and never give up a command: a PUBLISH made
  // while the publisher reconnects (a transition committed just as Redis came back) is sent once
  // it is connected, not dropped; the subscriber re-subscribes by itself (autoResubscribe) after
  // every reconnect. States published while a subscriber was away are recovered by the resync
  // each API node runs when its subscriber is back (server.ts, realtime/resync.ts).
  const pub = watch.watch(createRedisConnection(redisConfig, 'pub'), 'pub');
  const sub = watch.watch(createRedisConnection(redisConfig, 'sub'), 'sub');
  const queues = new BullQueueFactory({
    redis: redisConfig,
    prefix: keys.bullPrefix(),
    lockDurationMs: config.queueLockMs,
    onConnection: (c, role) => void (role === 'producer' ? watch.watch(c, 'queue', { translate: true }) : watch.watch(c, 'queue-worker')),
  });
  return {
    mode: 'redis',
    keys,
    flows: new RedisFlowStore(client, { keys, durability: config.redisDurability, onUnreplicated: (acked, wanted) => watch.emit('unreplicated', acked, wanted) }),
    users: new RedisUserStore(client, { keys }),
    codes: new RedisCodeStore(client, { keys }),
    queues,
    limits: new RateLimits(client, keys),
    loginCounters: new RedisLoginCounters(client, keys),
    redis: { client, pub, sub, watch },
    async close() {
      await queues.close();
      await Promise.allSettled([connection, pub, sub].map((c) => quitOrDrop(c)));
    },
  };
}
