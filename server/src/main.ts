import { ConfigError, loadConfig, type Config } from './config.js';
import { createHandoffServer } from './server.js';
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

const server = await createHandoffServer(config);
const { log } = server.handoff;
if (config.jwtSecretGenerated) {
  log.warn('JWT_SECRET is not set: using a random per-process secret (sessions do not survive a restart or span nodes)');
}
if (config.seedDemoUser) await seedDemoUser(server.handoff);
await seedUsers(server.handoff.users, seeds);
const url = await server.listen();
log.info({ url, mode: server.backend.mode }, `handoff listening on ${url} (${server.backend.mode} mode)`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const timer = setTimeout(() => {
    log.error('shutdown timed out; exiting');
    process.exit(1);
  }, config.shutdownTimeoutSeconds * 1000);
  timer.unref();
  await server.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
