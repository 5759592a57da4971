/**
 * Acknowledged final states survive a failover (contract §8). Redis replicates asynchronously: a
 * transition committed on a master that dies before its replica copied it is lost with it, and the
 * promoted replica would show the flow in its earlier state. So after a transition to a state a
 * caller is told about and acts on, the flow store waits (`WAIT <replicas> <timeout>`) until a
 * replica has the write before the answer goes out.
 *
 * On a timeout (no replica acked in time: it is down or lagging) the answer is sent anyway and
 * `handoff_redis_unreplicated_total` counts it: a 503 would not undo the write (the master has it,
 * a retry would get 409/410), and it would turn "one replica down" into "no login completes".
 * What remains: a master that dies within the window after a timed-out WAIT loses that transition.
 */
import type { FlowStateName } from '@handoff/protocol';
import { ConfigError, envInt, type Env } from '../lib/env.js';
import { REDIS_COMMAND_TIMEOUT_MS } from './redis-connection.js';
import type { RedisConfig } from './redis-config.js';
import type { RedisClient } from './redis-connection.js';

/** How many replicas must ack a durable transition, and how long to wait for them. */
export interface RedisDurability {
  /** REDIS_WAIT_REPLICAS: default 1 on Sentinel and Cluster, 0 (no WAIT) on one Redis. */
  replicas: number;
  /** REDIS_WAIT_TIMEOUT_MS: default 500 (at most 1,500: below the store's 2 s command timeout). */
  timeoutMs: number;
}

/** Default REDIS_WAIT_TIMEOUT_MS. */
export const REDIS_WAIT_TIMEOUT_MS = 500;

/** No WAIT (embedded mode, one Redis, or REDIS_WAIT_REPLICAS=0). */
export const NO_WAIT: RedisDurability = { replicas: 0, timeoutMs: REDIS_WAIT_TIMEOUT_MS };

/**
 * The states whose transition waits for a replica: `confirmed` / `succeeded` (the caller is told and
 * then redeems) and the final states a caller is told about. Not `expired`: it follows from the
 * clock, and a flow whose expiry was lost is expired again by the first read or sweep after a failover.
 */
export const DURABLE_STATES: ReadonlySet<FlowStateName> = new Set<FlowStateName>(['confirmed', 'succeeded', 'redeemed', 'cancelled', 'failed']);

/** REDIS_WAIT_REPLICAS and REDIS_WAIT_TIMEOUT_MS, validated; without Redis they are refused. */
export function redisDurabilityFromEnv(env: Env, redis: RedisConfig | null): RedisDurability {
  if (!redis) {
    for (const name of ['REDIS_WAIT_REPLICAS', 'REDIS_WAIT_TIMEOUT_MS']) {
      if (env[name]?.trim()) throw new ConfigError(name, 'needs a Redis deployment (embedded mode has no replicas)');
    }
    return NO_WAIT;
  }
  return {
    replicas: envInt(env, 'REDIS_WAIT_REPLICAS', redis.mode === 'single' ? 0 : 1, 0, 16),
    timeoutMs: envInt(env, 'REDIS_WAIT_TIMEOUT_MS', REDIS_WAIT_TIMEOUT_MS, 1, REDIS_COMMAND_TIMEOUT_MS - 500),
  };
}

/**
 * `WAIT replicas timeoutMs` after a write to `key`; resolves to the number of replicas that acked.
 * The flow store sends its WAIT in one pipeline with the write instead (RedisFlowStore.transition);
 * this is the WAIT on its own, one round trip more, for when that cannot be done.
 * WAIT covers the writes made earlier on the same connection: on one Redis (or Sentinel) that is the
 * client's only connection; on a Cluster it must reach the node that owns `key`'s slot, so it goes in
 * a pipeline behind a read of `key` (ioredis routes a pipeline by its keys, and keeps one connection
 * per node, the one the write went through). If that read is redirected (MOVED, ASK: the slot is
 * moving), the WAIT ran on a node that may not hold the write: that counts as a failure, not as acks.
 */
export async function waitForReplicas(client: RedisClient, key: string, d: RedisDurability): Promise<number> {
  if ('isCluster' in client && client.isCluster) {
    const replies = await client.pipeline().exists(key).wait(d.replicas, d.timeoutMs).exec();
    const [readErr] = replies?.[0] ?? [new Error('EXISTS: no reply')];
    if (readErr) throw readErr;
    const [err, acked] = replies?.[1] ?? [new Error('WAIT: no reply')];
    if (err) throw err;
    return Number(acked);
  }
  return client.wait(d.replicas, d.timeoutMs);
}
