/**
 * Starting on a port that is already taken: one clear line and a non-zero exit, no stack, and no
 * demo password (it is printed only once the server listens, as a free port shows).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServerProcess } from '../harness/server-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let blocker: Server;
let port: number;

beforeAll(async () => {
  blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  port = (blocker.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

it('a busy port ends the start with one line naming the port, exit 1, and no demo password', { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'server/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ENV: 'development',
      REDIS_URL: '',
      SEED_DEMO_USER: 'true',
      DEMO_PASSWORD: 'demo-password-never-printed',
      BCRYPT_COST: '4',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const [code] = await once(child, 'exit');

  expect(code, stdout + stderr).toBe(1);
  expect(stderr.trim().split('\n')).toEqual([
    `handoff: port ${port} is in use (another process listens on 127.0.0.1:${port}); stop it or set PORT to a free port`,
  ]);
  expect(stdout + stderr).not.toContain('demo-password-never-printed');
  expect(stdout + stderr).not.toMatch(/Demo user|EADDRINUSE|\n\s+at /);
});

it('on a free port, the demo password is printed, before the line that says it listens', { timeout: 60_000 }, async () => {
  const server = await startServerProcess({ SEED_DEMO_USER: 'true', DEMO_PASSWORD: 'demo-password-printed', NODE_ENV: 'development' });
  try {
    const out = server.output();
    expect(out).toContain('Demo user: ana@example.com  password: demo-password-printed');
    expect(out.indexOf('Demo user:')).toBeLessThan(out.indexOf('handoff listening on'));
  } finally {
    await server.kill();
  }
});
