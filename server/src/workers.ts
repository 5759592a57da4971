import { Emitter } from '@socket.io/redis-emitter';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createCore, createLogger, startWorkers, type Core } from './core.js';
import { openIdentity } from './identity/index.js';
import { ShutdownSteps } from './lib/shutdown.js';
import { Metrics } from './observability/metrics.js';
import { AdapterFanout } from './realtime/fanout.js';
import { ShardedFanout } from './realtime/sharded-fanout.js';
import { TopicHub } from './realtime/topic-hub.js';
import { openBackend } from './store/backend.js';

/** A process that only runs queue workers (ROLE=worker). Needs Redis. */
export interface WorkerProcess {
  core: Core;
  /**
   * Stop (idempotent): the queue workers finish their active jobs, then the Redis connections
   * close. Every step runs; a failed one is logged and makes close() reject once all ran.
   */
  close(): Promise<void>;
}

/**
 * A worker process builds the same capabilities as an API node (createCore) on the same backend,
 * but has no HTTP and no Socket.IO server: its transitions reach every node through the Redis
 * fan-out (FANOUT=sharded: SPUBLISH on each topic's channel; broadcast: the adapter's channel by
 * way of `@socket.io/redis-emitter`) — the same path API nodes use.
 */
export async function createWorkerProcess(config: Config, opts: { logger?: Logger } = {}): Promise<WorkerProcess> {
  if (!config.redisUrl) throw new Error('ROLE=worker needs Redis: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES');
  const log = opts.logger ?? createLogger(config);
  const backend = await openBackend(config, log);
  const hub = new TopicHub(log);
  const fanout =
    config.fanout === 'broadcast'
      ? new AdapterFanout(hub, new Emitter(backend.redis!.pub, { key: backend.keys.adapterChannel() }), log)
      : new ShardedFanout(hub, backend.redis!.pub, backend.keys, log);
  const core = createCore({ config, log, backend, hub, fanout, metrics: new Metrics() }, await openIdentity(config, backend, log));
  startWorkers(core);
  const steps = new ShutdownSteps(log);
  let closed: Promise<void> | null = null;
  return {
    core,
    close() {
      closed ??= (async () => {
        await steps.run('close the job queues', () => backend.queues.close());
        await steps.run('stop queue-position pushes', () => core.positions.close());
        await steps.run('close the backend', () => backend.close());
        await steps.run('stop the password threads', () => core.users.close());
        steps.assertClean();
      })();
      return closed;
    },
  };
}
