/**
 * The one factory of Redis connections (contract §8): every part (store, rate limits, fan-out,
 * BullMQ, webhooks, codes, the CLI) gets its connection here, for whichever deployment the config
 * names: one Redis (REDIS_URL), a Sentinel-watched master, or a Redis Cluster.
 */
import { Cluster, Redis, type ChainableCommander, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { toStoreError } from '../errors.js';
import { withDeadline } from '../lib/deadline.js';
import { singleRedis, type RedisConfig } from './redis-config.js';

/** A connection to any of the three deployments; both kinds take the same commands. */
export type RedisClient = Redis | Cluster;

/**
 * What a connection is for; each role keeps its own behaviour on every topology:
 *  - `command`: the stores' commands. Fail fast while Redis is down (no offline queue, one retry,
 *    a 2 s command timeout): a request answers 503 instead of hanging. Lazy: `await connect()`.
 *  - `pub` / `sub`: the fan-out's publisher and subscriber. Offline queue, never give up a command;
 *    the subscriber re-subscribes by itself after every reconnect.
 *  - `queue`: a BullMQ producer, fails fast like `command` (its calls are bounded by the queue).
 *  - `queue-worker`: a BullMQ worker, blocks on Redis and never gives up (BullMQ requires it).
 *  - `cli`: a one-shot tool (user-add): one retry, lazy.
 */
export type RedisRole = 'command' | 'pub' | 'sub' | 'queue' | 'queue-worker' | 'cli';

/** Longest a store command waits for an answer (a frozen Redis, a half-open connection), ms. */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;

/** Reconnect backoff of every Redis connection (store, adapter, queues): 50 ms doubling to 1 s. */
export function redisRetryStrategy(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 5), 1000);
}

/** The ioredis options of each role (topology-independent). */
function roleOptions(role: RedisRole): RedisOptions {
  switch (role) {
    case 'command':
      return { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: REDIS_COMMAND_TIMEOUT_MS, connectTimeout: 2000, retryStrategy: redisRetryStrategy };
    case 'pub':
      return { maxRetriesPerRequest: null, retryStrategy: redisRetryStrategy };
    case 'sub':
      return { maxRetriesPerRequest: null, autoResubscribe: true, retryStrategy: redisRetryStrategy };
    case 'queue':
      return { maxRetriesPerRequest: 1, enableOfflineQueue: false, enableReadyCheck: false, retryStrategy: redisRetryStrategy };
    case 'queue-worker':
      return { maxRetriesPerRequest: null, enableReadyCheck: false, retryStrategy: redisRetryStrategy };
    case 'cli':
      return { maxRetriesPerRequest: 1, lazyConnect: true };
  }
}

/** How to build one connection: what `createRedisConnection` passes to ioredis. */
export type RedisConnectionOptions =
  | { mode: 'single'; url: string; options: RedisOptions }
  | { mode: 'sentinel'; options: RedisOptions }
  | { mode: 'cluster'; nodes: Array<{ host: string; port: number }>; options: ClusterOptions };

/**
 * A promoted replica used to be a master that is now read-only: on READONLY, reconnect (Sentinel
 * then names the new master; a DNS name of a managed Redis points to it). The command fails.
 */
function reconnectOnReadonly(err: Error): boolean {
  return err.message.startsWith('READONLY');
}

/**
 * The ioredis options for `role` on the deployment `config` names (Config.redis): credentials and
 * TLS on every connection, the role's timeouts and retries kept on every topology. `overrides` are
 * merged last (tests).
 */
export function redisConnectionOptions(config: RedisConfig, role: RedisRole = 'command', overrides: RedisOptions = {}): RedisConnectionOptions {
  const tls: ConnectionOptions | undefined = config.tls ? { ...(config.tls.ca !== undefined && { ca: config.tls.ca }) } : undefined;
  const auth: RedisOptions = {
    ...(config.username !== undefined && { username: config.username }),
    ...(config.password !== undefined && { password: config.password }),
    ...(tls && { tls }),
  };
  const base = roleOptions(role);
  switch (config.mode) {
    case 'single':
      // ioredis reads host, port, user, password, db and rediss: from the URL; explicit options win.
      return { mode: 'single', url: config.url, options: { ...base, ...auth, reconnectOnError: reconnectOnReadonly, ...overrides } };
    case 'sentinel':
      return {
        mode: 'sentinel',
        options: {
          ...base,
          ...auth,
          sentinels: config.sentinels.map((s) => ({ host: s.host, port: s.port })),
          name: config.masterName,
          role: 'master',
          ...(config.sentinelPassword !== undefined && { sentinelPassword: config.sentinelPassword }),
          ...(tls && { enableTLSForSentinelMode: true, sentinelTLS: tls }),
          // No failover detector (ioredis listening for +switch-master): when the message comes
          // while the connection is reconnecting after its master died, ioredis aborts that connect
          // and ends the connection for good ("Connection is closed." on every command after the
          // failover: seen in the 1,000-flow Sentinel failover test). The connection finds the new
          // master by itself: it reconnects after the drop, and a demoted master that is still
          // reachable (a manual failover) answers writes with READONLY, which reconnects (below).
          failoverDetector: false,
          reconnectOnError: reconnectOnReadonly,
          ...overrides,
        },
      };
    case 'cluster': {
      const { lazyConnect, enableOfflineQueue, enableReadyCheck, retryStrategy, ...nodeOptions } = { ...base, ...overrides };
      return {
        mode: 'cluster',
        nodes: config.nodes.map((n) => ({ host: n.host, port: n.port })),
        options: {
          ...(lazyConnect !== undefined && { lazyConnect }),
          ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
          ...(enableReadyCheck !== undefined && { enableReadyCheck }),
          clusterRetryStrategy: retryStrategy ?? redisRetryStrategy,
          // The subscriber SSUBSCRIBEs each topic's channel on the master owning its slot (FANOUT=sharded).
          ...(role === 'sub' && { shardedSubscribers: true }),
          // Node addresses come from CLUSTER SLOTS; with TLS keep the names as given (certificates
          // of managed clusters name the configuration endpoint, not the node IPs).
          ...(tls && { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) }),
          redisOptions: { ...nodeOptions, ...auth },
        },
      };
    }
  }
}

/** A connection of `role` to the deployment `config` names: a Redis (one or Sentinel) or a Cluster. */
export function createRedisConnection(config: RedisConfig, role: RedisRole = 'command', overrides: RedisOptions = {}): RedisClient {
  const o = redisConnectionOptions(config, role, overrides);
  if (o.mode === 'single') return new Redis(o.url, o.options);
  if (o.mode === 'sentinel') return new Redis(o.options);
  return new Cluster(o.nodes, o.options);
}

/** The deployment of a config: `redis`, or (a config built by hand) one Redis at `redisUrl`; null = embedded. */
export function redisConfigOf(config: { redis?: RedisConfig | null; redisUrl: string | null }): RedisConfig | null {
  return config.redis ?? (config.redisUrl ? singleRedis(config.redisUrl) : null);
}

/** QUIT, or drop the connection when Redis does not answer within a second (it may be down). */
export async function quitOrDrop(c: RedisClient): Promise<void> {
  if (c.status === 'end') return;
  try {
    await withDeadline(c.quit(), 1000);
  } catch {
    c.disconnect();
  }
}

/** ioredis's refusal of a Cluster pipeline whose keys are in several slots (Pipeline.exec). */
const CROSS_SLOT = /^All (the )?keys in (a|the) pipeline/;

/** What `execPipeline` resolves to: one `[error, reply]` per command, in order. */
export type PipelineReplies = Array<[Error | null, unknown]>;

/**
 * `pipeline.exec()` (or a `multi()`'s) whose errors are what a single store command's are
 * (toStoreError, the Redis watch's rule). The watch only sees commands: a pipeline's own rejection
 * (a Cluster with no slot map yet and no node reachable) is not one of them. Except ioredis's
 * refusal of keys in several slots: that is a bug here (a 500), not an outage.
 */
export async function execPipeline(pipeline: ChainableCommander): Promise<PipelineReplies> {
  const outage = (err: unknown): Error => (CROSS_SLOT.test((err as Error)?.message ?? '') ? (err as Error) : toStoreError(err));
  let replies: PipelineReplies | null;
  try {
    replies = await pipeline.exec();
  } catch (err) {
    throw outage(err);
  }
  return (replies ?? []).map(([err, reply]): [Error | null, unknown] => [err ? outage(err) : null, reply]);
}
