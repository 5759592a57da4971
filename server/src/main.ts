import { ConfigError, loadConfig, type Config } from './config.js';
import type { Logger } from 'pino';
import { createHandoffServer } from './server.js';
import { createWorkerProcess } from './workers.js';
import { listenErrorLine } from './listen-error.js';
import { seedDemoUser } from './users/demo-user.js';
import { parseSeedUsers, seedUsers, type SeedUser } from './users/seed-users.js';

let config: Config;
let seeds: SeedUser[];
try {
  config = loadConfig();
  seeds = parseSeedUsers(process.env.SEED_USERS);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`handoff: invalid configuration: ${err.message}`);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}

if (config.role !== 'all' && !config.redisUrl) {
  console.error(`handoff: invalid configuration: ROLE: ${config.role} needs Redis: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES (embedded mode runs everything in one process)`);
  process.exit(78);
}

let close: () => Promise<void>;
let log: Logger;
try {
  if (config.role === 'worker') {
    const worker = await createWorkerProcess(config);
    log = worker.core.log;
    close = () => worker.close();
    log.info({ mode: 'redis', role: 'worker' }, 'handoff worker running');
  } else {
    const server = await createHandoffServer(config);
    log = server.handoff.log;
    const demoUser = config.seedDemoUser ? await seedDemoUser(server.handoff) : null;
    await seedUsers(server.handoff.users, seeds);
    close = () => server.close();
    let url: string;
    try {
      url = await server.listen();
    } catch (err) {
      const line = listenErrorLine(err, config.port, config.host);
      if (!line) throw err;
      console.error(line); // one line, no stack: the port is taken (or needs privileges)
      process.exit(1);
    }
    // Printed on purpose (development only: this is how the demo is used), and only once listening.
    if (demoUser) console.log(demoUser);
    log.info({ url, mode: server.handoff.backend.mode, role: config.role }, `handoff listening on ${url} (${server.handoff.backend.mode} mode)`);
  }
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`handoff: invalid configuration: ${err.message}`);
    process.exit(78);
  }
  throw err;
}
if (config.jwtSecretGenerated) {
  log.warn('JWT_SECRET is not set: using a random per-process secret (sessions do not survive a restart or span nodes)');
}

// A promise nobody awaits must never take the node (and every socket on it) down: log it loudly.
process.on('unhandledRejection', (reason) => {
  log.error({ err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : String(reason) }, 'unhandled rejection');
});

/**
 * Graceful shutdown (server.close() has the order: readiness, long-polls, sockets, HTTP, queues,
 * Redis), bounded by SHUTDOWN_TIMEOUT_SECONDS: past it the process exits with code 1.
 */
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  const started = Date.now();
  log.info({ signal, timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutting down');
  const timer = setTimeout(() => {
    log.error({ ms: Date.now() - started }, 'shutdown timed out; exiting');
    process.exit(1);
  }, config.shutdownTimeoutSeconds * 1000);
  timer.unref();
  try {
    await close();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'shutdown failed; exiting');
    process.exit(1);
  }
  log.info({ ms: Date.now() - started }, 'stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
