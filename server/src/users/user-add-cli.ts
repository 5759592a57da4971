/**
 * Add a user to the Redis store: `npm run user:add -- --email a@b.c --name Ana`, then type the
 * password at the prompt (not echoed), or pipe it in: `printf '%s\n' "$PW" | npm run user:add -- …`.
 * `--password` still works but is discouraged: argv shows in `ps` and in shell history.
 * Embedded mode keeps users in the server's memory, so there use SEED_USERS or the demo user.
 */
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { createRedisConnection } from '../store/redis-connection.js';
import { ConfigError, loadConfig } from '../config.js';
import { Jwt } from './jwt.js';
import { Passwords } from './passwords.js';
import { RedisUserStore } from './redis-user-store.js';
import { UserService } from './user-service.js';
import { HandoffError } from '../errors.js';

const USAGE = `usage: npm run user:add -- --email <email> [--name <display name>] [--avatar <url>]

Adds an account to the Redis store named by REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES (and REDIS_PREFIX, BCRYPT_COST: the
server's variables, see docs/operations.md). Prints the new user as one JSON line.

The password is read
  - from a prompt that does not echo it, when stdin is a terminal;
  - from the first line of stdin otherwise:  printf '%s\\n' "$PW" | npm run user:add -- --email …
  --password <password> works too, but is discouraged: it shows in \`ps\` and in shell history.

options:
  --email <email>        the account's email (required)
  --name <display name>  shown on the phone and to the browser (default: the part before @)
  --avatar <url>         an avatar image URL (default: none)
  --password <password>  discouraged, see above
  -h, --help             this text
`;

/** Exit with `code` after one line on stderr (no stack: every failure here is the operator's to fix). */
function fail(message: string, code = 1): never {
  console.error(`user:add: ${message}`);
  process.exit(code);
}

let values: { email?: string; password?: string; name?: string; avatar?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      email: { type: 'string' },
      password: { type: 'string' },
      name: { type: 'string' },
      avatar: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  console.error(`user:add: ${(err as Error).message}\n`);
  console.error(USAGE);
  process.exit(64); // EX_USAGE
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (!values.email) {
  console.error('user:add: --email is required\n');
  console.error(USAGE);
  process.exit(64);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) fail(`invalid configuration: ${err.message}`, 78);
  throw err;
}
if (!config.redis) {
  fail('needs Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES): embedded mode keeps users in the server process (use SEED_USERS there).', 64);
}

let password: string;
if (values.password !== undefined) {
  console.error('user:add: warning: --password shows in `ps` and in shell history; prefer the prompt or stdin (see --help)');
  password = values.password;
} else if (process.stdin.isTTY) {
  password = await prompt('Password: ');
  if (password && (await prompt('Repeat password: ')) !== password) fail('the passwords do not match');
} else {
  password = await firstLine(process.stdin);
}
if (!password) fail('the password is empty', 64);

const redis = createRedisConnection(config.redis, 'cli');
redis.on('error', () => {}); // reported once below, not as an unhandled 'error' event per retry
const users = new UserService(
  new RedisUserStore(redis as Redis, { prefix: config.redisPrefix }),
  new Passwords(config.bcryptCost),
  new Jwt(config.jwtSecret, config.jwtIssuer, config.jwtAudience, config.sessionTtlSeconds),
);
try {
  await redis.connect();
  const user = await users.create({
    email: values.email,
    password,
    displayName: values.name ?? values.email.split('@')[0],
    avatarUrl: values.avatar ?? null,
  });
  console.log(JSON.stringify({ id: user.id, email: user.email, displayName: user.displayName }));
} catch (err) {
  console.error(err instanceof HandoffError ? `user:add: ${err.code}: ${err.message}` : `user:add: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  redis.disconnect();
  await users.close();
}

/** The first line of a piped stdin, without its line ending (a password cannot hold a newline). */
async function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += chunk.toString();
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0].replace(/\r$/, '');
}

/** Ask on the terminal with echo off (raw mode): Enter ends, Backspace erases, Ctrl-C / Ctrl-D abort. */
function prompt(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve) => {
    let answer = '';
    const done = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (data: string): void => {
      for (const ch of data) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(answer);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && answer === '')) {
          done();
          fail('cancelled', 130);
        }
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1);
        else if (ch >= ' ') answer += ch;
      }
    };
    stdin.on('data', onData);
  });
}
