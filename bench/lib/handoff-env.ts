import { SEED_USERS } from '../../test/harness/cluster.js';
import { uniquePrefix } from '../../test/harness/redis-server.js';
import { TEST_JWT_SECRET } from '../../test/harness/server-process.js';

/**
 * The environment a benchmark gives its Handoff nodes: production mode, quiet logs, cheap bcrypt,
 * the seeded test users (Ana, Bob), a fresh REDIS_PREFIX named after `prefixName`, QR codes that
 * outlive the run and no per-IP QR limit (every flow comes from one client address). `env` (the
 * Redis deployment, a role, overrides) is merged last.
 */
export function handoffBenchEnv(prefixName: string, env: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    REDIS_PREFIX: uniquePrefix(prefixName),
    SEED_USERS,
    BCRYPT_COST: '4',
    LOG_LEVEL: 'warn',
    JWT_SECRET: TEST_JWT_SECRET,
    SEED_DEMO_USER: 'false',
    NODE_ENV: 'production',
    QR_TTL_SECONDS: '3600',
    QR_IP_PER_MINUTE: '0',
    ...env,
  };
}
