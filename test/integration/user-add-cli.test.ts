/**
 * `npm run user:add` (server/src/users/user-add-cli.ts) as a subprocess against a private
 * redis-server: --help, the password from a pipe, from a no-echo terminal prompt (under `script`,
 * which gives the CLI a real pseudo-terminal), and the discouraged --password.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcrypt';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RedisUserStore } from '../../server/src/users/redis-user-store.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = ['--conditions=source', '--import', 'tsx', 'server/src/users/user-add-cli.ts'];
const prefix = uniquePrefix('user-add');
let redis: RedisHandle;
let client: Redis;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node <args>` with the CLI's environment; `input(write, output)` talks to its stdin. */
async function run(
  command: string,
  args: string[],
  input?: (write: (s: string) => void, output: () => string) => Promise<void>,
): Promise<Run> {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: redis.url, REDIS_PREFIX: prefix, BCRYPT_COST: '4', NODE_ENV: 'test' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exit = once(child, 'exit');
  if (input) await input((s) => child.stdin.write(s), () => stdout + stderr);
  else child.stdin.end();
  const [code] = (await exit) as [number | null];
  return { code, stdout, stderr };
}

/** Resolves once `output()` contains `text` (polled: a pseudo-terminal's output comes in any chunks). */
async function waitFor(output: () => string, text: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`never printed ${JSON.stringify(text)}; got:\n${output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function passwordMatches(email: string, password: string): Promise<boolean> {
  const user = await new RedisUserStore(client, { prefix }).byEmail(email);
  expect(user, `no user ${email}`).not.toBeNull();
  return bcrypt.compare(password, user!.passwordHash);
}

it('--help prints the usage and exits 0; an unknown option is a usage error, not a stack trace', { timeout: 60_000 }, async () => {
  const help = await run(process.execPath, [...CLI, '--help']);
  expect(help.code, help.stderr).toBe(0);
  expect(help.stdout).toMatch(/^usage: npm run user:add -- --email <email>/);
  expect(help.stdout).toContain('discouraged');
  expect(help.stderr).toBe('');

  const bad = await run(process.execPath, [...CLI, '--emial', 'x@example.com']);
  expect(bad.code).toBe(64);
  expect(bad.stderr).toMatch(/^user:add: Unknown option '--emial'/);
  expect(bad.stderr).toContain('usage:');
  expect(bad.stderr).not.toMatch(/\n\s+at /);
});

it('reads the password from the first line of a piped stdin', { timeout: 60_000 }, async () => {
  const r = await run(process.execPath, [...CLI, '--email', 'piped@example.com', '--name', 'Piped'], async (write) => {
    write('piped-password-1\nignored second line\n');
  });
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ email: 'piped@example.com', displayName: 'Piped' });
  expect(r.stderr).toBe('');
  expect(await passwordMatches('piped@example.com', 'piped-password-1')).toBe(true);
});

it('on a terminal, prompts twice with echo off, and the password never shows', { timeout: 60_000 }, async () => {
  const command = [process.execPath, ...CLI, '--email', 'tty@example.com'].map((a) => `'${a}'`).join(' ');
  const r = await run('script', ['-q', '-e', '-c', command, '/dev/null'], async (write, output) => {
    await waitFor(output, 'Password: ');
    write('tty-password-1\r');
    await waitFor(output, 'Repeat password: ');
    write('tty-password-1\r');
  });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain('"email":"tty@example.com"');
  expect(r.stdout + r.stderr).not.toContain('tty-password-1');
  expect(await passwordMatches('tty@example.com', 'tty-password-1')).toBe(true);
});

it('--password still works, with a warning that it shows in ps and shell history', { timeout: 60_000 }, async () => {
  const r = await run(process.execPath, [...CLI, '--email', 'argv@example.com', '--password', 'argv-password-1']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/^user:add: warning: --password shows in `ps` and in shell history/);
  expect(await passwordMatches('argv@example.com', 'argv-password-1')).toBe(true);
});
