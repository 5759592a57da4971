import { Emitter } from '@socket.io/redis-emitter';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createCore, createLogger, type Core } from './core.js';
import { LoginService } from './login/login-service.js';
import { CodeService, startCodeWorker } from './codes/index.js';
import { AdapterFanout, adapterChannel } from './realtime/fanout.js';
import { startWebhookProducer, startWebhookWorker } from './webhooks/index.js';

/**
 * Start every queue worker on a Core (an API node with ROLE=all, or a worker process). They stop
 * with the backend: closing it closes the queues, which lets active jobs finish first.
 */
export function startWorkers(core: Core, logins: LoginService): void {
  logins.startWorker(core.config.loginConcurrency);
  startCodeWorker(core);
  startWebhookWorker(core);
}

/** A process that only runs queue workers (ROLE=worker). Needs Redis. */
export interface WorkerProcess {
  core: Core;
  close(): Promise<void>;
}

/**
 * A worker process has no Socket.IO server: its transitions reach every node through the Redis
 * adapter's channel by way of `@socket.io/redis-emitter` — the same fan-out path API nodes use.
 */
export async function createWorkerProcess(config: Config, opts: { logger?: Logger } = {}): Promise<WorkerProcess> {
  if (!config.redisUrl) throw new Error('ROLE=worker needs REDIS_URL');
  const log = opts.logger ?? createLogger(config);
  const core = await createCore(config, log, (hub, backend) => {
    const emitter = new Emitter(backend.redis!.pub, { key: adapterChannel(config.redisPrefix) });
    return new AdapterFanout(hub, emitter);
  });
  startWebhookProducer(core); // logins finished here raise login.succeeded / login.failed
  const codes = new CodeService(core);
  startWorkers(core, new LoginService(core, () => codes));
  let closed: Promise<void> | null = null;
  return {
    core,
    close() {
      closed ??= core.backend.close().then(() => core.users.close());
      return closed;
    },
  };
}
