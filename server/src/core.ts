import { pino, type Logger } from 'pino';
import { isFinalState } from '@handoff/protocol';
import type { Config } from './config.js';
import { FlowService } from './flows/flow-service.js';
import type { FlowStore } from './flows/flow-store.js';
import { Metrics } from './observability/metrics.js';
import type { RateLimits } from './lib/rate-limits.js';
import type { QueueFactory } from './queue/job-queue.js';
import type { Fanout } from './realtime/fanout.js';
import { TopicHub } from './realtime/topic-hub.js';
import { openBackend, type Backend } from './store/backend.js';
import { Jwt } from './users/jwt.js';
import { Passwords } from './users/passwords.js';
import { UserService } from './users/user-service.js';

/**
 * What every Handoff process has, API node or worker: the backend's stores, queues and limits,
 * the flow and user services, and the fan-out. No HTTP, no sockets.
 */
export interface Core {
  config: Config;
  log: Logger;
  backend: Backend;
  store: FlowStore;
  flows: FlowService;
  users: UserService;
  hub: TopicHub;
  fanout: Fanout;
  metrics: Metrics;
  queues: QueueFactory;
  limits: RateLimits;
}

/** Most log output held in memory while stdout's reader is behind (then lines are dropped). */
const LOG_BUFFER_BYTES = 16 * 1024 * 1024;

/** The pino logger Handoff uses; secrets are redacted whatever a serializer or debug line does. */
export function createLogger(config: Config): Logger {
  return pino(
    {
      level: config.logLevel,
      redact: {
        paths: ['req.headers.authorization', 'req.headers["watch-token"]', 'req.headers.cookie', '*.password', '*.token', '*.watchToken', '*.code'],
        censor: '[redacted]',
      },
    },
    // Asynchronous stdout: a line is queued and written by the next write, so under load many lines
    // go out in one write instead of one blocking write per line on the event loop. What is queued
    // is written when the process exits through its exit event (process.exit, an uncaught
    // exception); a SIGKILL or a crash that skips that event loses it. If stdout's reader falls
    // behind by more than LOG_BUFFER_BYTES, lines are dropped rather than held in memory.
    pino.destination({ dest: 1, sync: false, maxLength: LOG_BUFFER_BYTES }),
  );
}

/**
 * Open the backend and build the services. `makeFanout` decides how states leave this process:
 * the Socket.IO server's adapter on an API node, the Redis emitter on a worker.
 */
export async function createCore(
  config: Config,
  log: Logger,
  makeFanout: (hub: TopicHub, backend: Backend) => Fanout,
): Promise<Core> {
  const backend = await openBackend(config, log);
  const hub = new TopicHub();
  const fanout = makeFanout(hub, backend);
  const flows = new FlowService(backend.flows, fanout, hub, { tombstoneMs: config.tombstoneSeconds * 1000 });
  const users = new UserService(
    backend.users,
    new Passwords(config.bcryptCost, config.bcryptThreads),
    new Jwt(config.jwtSecret, config.jwtIssuer, config.jwtAudience, config.sessionTtlSeconds),
  );
  const metrics = new Metrics();
  // API nodes and workers alike report queue depth, job durations and Redis errors.
  metrics.attachQueues(backend.queues);
  if (backend.redis) metrics.attachRedis(backend.redis.watch);
  flows.onCreate((record) => metrics.flowsCreated.inc({ kind: record.kind }));
  flows.onCommit((record) => {
    if (isFinalState(record.state)) metrics.flowsFinished.inc({ kind: record.kind, state: record.state });
  });
  return {
    config,
    log,
    backend,
    store: backend.flows,
    flows,
    users,
    hub,
    fanout,
    metrics,
    queues: backend.queues,
    limits: backend.limits,
  };
}
