import { pino, type Logger } from 'pino';
import { isFinalState } from '@handoff/protocol';
import type { Config } from './config.js';
import { ApprovalService } from './approvals/approval-service.js';
import { CodeService, startCodeWorker } from './codes/index.js';
import { FlowService } from './flows/flow-service.js';
import { CredentialsClient } from './identity/credentials-client.js';
import { Identity, type AppTokens, type Assertions, type JwksSource } from './identity/identity.js';
import { LoginPositions } from './login/login-positions.js';
import { LoginService } from './login/login-service.js';
import type { Metrics } from './observability/metrics.js';
import { QrService } from './qr/qr-service.js';
import type { Fanout } from './realtime/fanout.js';
import type { TopicHub } from './realtime/topic-hub.js';
import type { Backend } from './store/backend.js';
import { Jwt } from './users/jwt.js';
import { Passwords } from './users/passwords.js';
import { UserService } from './users/user-service.js';
import { createWebhooks, type Webhooks } from './webhooks/index.js';

/**
 * What a process builds before any capability, and passes in: the backend (stores, queues, rate
 * limits, connections), this node's topic hub, the fan-out that carries committed states to every
 * node (Socket.IO's adapter on an API node, the Redis emitter on a worker, in-process when
 * embedded), and the metrics registry.
 */
export interface Platform {
  config: Config;
  log: Logger;
  backend: Backend;
  hub: TopicHub;
  fanout: Fanout;
  metrics: Metrics;
}

/**
 * Every capability of Handoff, built once per process by `createCore`, the same way on an API node
 * and in a worker process. No HTTP, no sockets: those plug into it (server.ts).
 */
export interface Core extends Platform {
  flows: FlowService;
  users: UserService;
  qr: QrService;
  /** Who people are: built-in sessions and the app's own tokens; what a redeem hands out. */
  identity: Identity;
  /** Verification codes, and login by code. */
  codes: CodeService;
  /** Password and code logins, sync and through the login queue. */
  logins: LoginService;
  /** Queue positions of async logins, pushed to their subscribers. */
  positions: LoginPositions;
  /** Webhooks to the app's backend; null without WEBHOOK_URLS. */
  webhooks: Webhooks | null;
  /** Push-to-approve: approvals, number matching, the user channel's pushes. */
  approvals: ApprovalService;
}

/** The app-identity parts built before the capabilities (they load keys): absent with ACCOUNTS=builtin. */
export interface IdentityParts {
  appTokens?: AppTokens | null;
  assertions?: (Assertions & JwksSource) | null;
}

/** Most log output held in memory while stdout's reader is behind (then lines are dropped). */
const LOG_BUFFER_BYTES = 16 * 1024 * 1024;

/** The pino logger Handoff uses; secrets are redacted whatever a serializer or debug line does. */
export function createLogger(config: Config): Logger {
  return pino(
    {
      level: config.logLevel,
      redact: {
        paths: ['req.headers.authorization', 'req.headers["watch-token"]', 'req.headers["x-api-key"]', 'req.headers.cookie', '*.password', '*.token', '*.watchToken', '*.code'],
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
 * Build every capability on a platform. Each part is constructed once, with what it needs passed
 * in; the webhook producer starts listening to commits here, since every process that commits
 * transitions raises their webhooks. Queue workers start with `startWorkers`.
 */
export function createCore(platform: Platform, parts: IdentityParts = {}): Core {
  const { config, log, backend, hub, fanout, metrics } = platform;
  const positions = new LoginPositions(hub, backend.loginCounters, config.loginPositionIntervalMs);
  const flows = new FlowService(backend.flows, fanout, hub, {
    tombstoneMs: config.tombstoneSeconds * 1000,
    decorate: (record, state) => positions.decorate(record, state),
    log,
  });
  const users = new UserService(
    backend.users,
    new Passwords(config.bcryptCost, config.bcryptThreads),
    new Jwt(config.jwtSecret, config.jwtIssuer, config.jwtAudience, config.sessionTtlSeconds),
  );
  // API nodes and workers alike report queue depth, job durations and Redis errors.
  metrics.attachQueues(backend.queues);
  if (backend.redis) metrics.attachRedis(backend.redis.watch);
  flows.onCreate((record) => metrics.flowsCreated.inc({ kind: record.kind }));
  flows.onCommit((record) => {
    if (isFinalState(record.state)) metrics.flowsFinished.inc({ kind: record.kind, state: record.state });
  });
  const identity = new Identity(config.accounts, users, parts.appTokens ?? null, parts.assertions ?? null);
  const codes = new CodeService({ config, log, backend, metrics, users });
  const credentials = config.credentials ? new CredentialsClient(config.credentials, log.child({ component: 'credentials' })) : null;
  const logins = new LoginService({ config, log, backend, fanout, flows, users, codes, credentials });
  const webhooks = createWebhooks({ config, log, backend, metrics });
  webhooks?.produce(flows);
  return {
    ...platform,
    flows,
    users,
    qr: new QrService(flows, config.qrTtlSeconds * 1000, config.qrPayloadUrl),
    identity,
    codes,
    logins,
    positions,
    webhooks,
    approvals: new ApprovalService(flows, fanout, config.approvals),
  };
}

/**
 * Start every queue worker of this process (an API node with ROLE=all, or a worker process). They
 * stop when the backend's queues close, which lets active jobs finish first.
 */
export function startWorkers(core: Core): void {
  core.logins.startWorker(core.config.loginConcurrency);
  startCodeWorker(core.codes, core);
  core.webhooks?.work();
}
