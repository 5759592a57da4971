/**
 * Add a user to the Redis store: `npm run user:add -- --email a@b.c --password ... --name Ana`.
 * Embedded mode keeps users in the server's memory, so there use SEED_USERS or the demo user.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../config.js';
import { Jwt } from './jwt.js';
import { Passwords } from './passwords.js';
import { RedisUserStore } from './redis-user-store.js';
import { UserService } from './user-service.js';
import { HandoffError } from '../errors.js';

const { values } = parseArgs({
  options: {
    email: { type: 'string' },
    password: { type: 'string' },
    name: { type: 'string' },
    avatar: { type: 'string' },
  },
});

if (!values.email || !values.password) {
  console.error('usage: npm run user:add -- --email <email> --password <password> [--name <display name>] [--avatar <url>]');
  process.exit(64);
}
const config = loadConfig();
if (!config.redisUrl) {
  console.error('user:add needs REDIS_URL: embedded mode keeps users in the server process (use SEED_USERS there).');
  process.exit(64);
}
const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
try {
  const users = new UserService(
    new RedisUserStore(redis, { prefix: config.redisPrefix }),
    new Passwords(config.bcryptCost),
    new Jwt(config.jwtSecret, config.jwtIssuer, config.jwtAudience, config.sessionTtlSeconds),
  );
  const user = await users.create({
    email: values.email,
    password: values.password,
    displayName: values.name ?? values.email.split('@')[0],
    avatarUrl: values.avatar ?? null,
  });
  console.log(JSON.stringify({ id: user.id, email: user.email, displayName: user.displayName }));
} catch (err) {
  console.error(err instanceof HandoffError ? `user:add: ${err.code}: ${err.message}` : err);
  process.exitCode = 1;
} finally {
  redis.disconnect();
}
