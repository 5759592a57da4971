/**
 * Start-up, the user CLI, heartbeats, health, OpenAPI and metrics: the operator's side of issue #2.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';
import { http } from '../harness/clients.js';
import { SEED_USERS } from '../harness/cluster.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, out }));
}

describe('start-up', () => {
  it('a bad configuration value stops the server with a message naming the variable', async () => {
    const { code, out } = await run(['server/src/main.ts'], { PORT: 'eighty', QR_TTL_SECONDS: '30' });
    expect(code).toBe(78);
    expect(out).toContain('invalid configuration: PORT: expected a whole number');
  });

  it('refuses to start in production without JWT_SECRET', async () => {
    const { code, out } = await run(['server/src/main.ts'], { NODE_ENV: 'production', JWT_SECRET: '' });
    expect(code).toBe(78);
    expect(out).toContain('JWT_SECRET');
  });
});

describe('user:add CLI (Redis mode)', () => {
  let redis: RedisHandle;
  let server: ServerProcess;
  const prefix = uniquePrefix('cli');

  beforeAll(async () => {
    redis = await startRedis();
    server = await startServerProcess({ REDIS_URL: redis.url, REDIS_PREFIX: prefix });
  });
  afterAll(async () => {
    await server?.kill();
    await redis?.stop();
  });

  it('adds a user who can then log in; a second add of the same email fails', async () => {
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: prefix, BCRYPT_COST: '4' };
    const args = ['server/src/users/user-add-cli.ts', '--email', 'Cli@Example.com', '--password', 'cli-password-1', '--name', 'Cli'];
    const first = await run(args, env);
    expect(first.code, first.out).toBe(0);
    // out is stdout and stderr: the JSON line, and the warning that --password shows in `ps`.
    expect(JSON.parse(/^\{.*\}$/m.exec(first.out)?.[0] ?? 'null')).toMatchObject({ email: 'cli@example.com', displayName: 'Cli' });
    expect(first.out).not.toContain('cli-password-1');
    const login = await http(server.url, 'POST', '/v1/sessions', { body: { email: 'cli@example.com', password: 'cli-password-1' } });
    expect(login).toMatchObject({ status: 200, body: { user: { displayName: 'Cli' } } });
    const again = await run(args, env);
    expect(again.code).toBe(1);
    expect(again.out).toContain('email_taken');
  });
});

describe('operator endpoints and heartbeats', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    // 500 ms: the healthy peer below answers from this test process, which a loaded machine can
    // hold up for a few hundred ms; two missed pings must mean silence, not a busy CI.
    server = await startServerProcess({ WS_PING_INTERVAL_MS: '500', SEED_USERS });
  });
  afterAll(() => server?.kill());

  it('healthz, readyz and metrics answer', async () => {
    expect(await http(server.url, 'GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await http(server.url, 'GET', '/readyz')).toMatchObject({ status: 200, body: { status: 'ready', mode: 'embedded' } });
    await http(server.url, 'POST', '/v1/qr');
    const metrics = await http(server.url, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/handoff_http_requests_total\{method="POST",route="\/v1\/qr",status="201"\} 1/);
  });

  it('serves the OpenAPI document with every contract route', async () => {
    const doc = await http(server.url, 'GET', '/docs/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    for (const path of ['/v1/qr', '/v1/qr/{id}/image.svg', '/v1/flows/{topic}', '/v1/qr/{id}', '/v1/qr/{id}/scan', '/v1/qr/{id}/confirm', '/v1/qr/{id}/cancel', '/v1/flows/{topic}/session', '/v1/sessions', '/v1/me', '/healthz', '/readyz', '/metrics']) {
      expect(Object.keys(doc.body.paths), path).toContain(path);
    }
  });

  it('serves the QR image as SVG', async () => {
    const qr = await http(server.url, 'POST', '/v1/qr');
    const svg = await fetch(qr.body.imageUrl);
    expect(svg.status).toBe(200);
    expect(svg.headers.get('content-type')).toContain('image/svg+xml');
    expect(await svg.text()).toMatch(/^<svg/);
  });

  it('drops a WebSocket peer that misses two pings, and keeps one that answers', async () => {
    const url = server.url.replace('http', 'ws') + '/v1/ws';
    const silent = new WebSocket(url, { autoPong: false });
    const healthy = new WebSocket(url);
    let pings = 0;
    silent.on('ping', () => pings++);
    await Promise.all([once(silent, 'open'), once(healthy, 'open')]);
    const [code] = (await once(silent, 'close')) as [number];
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(code).toBe(1006); // terminated, no close frame
    expect(healthy.readyState).toBe(WebSocket.OPEN);
    healthy.close();
  });
});

describe('CORS and flow metrics', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess({ ALLOWED_ORIGINS: 'https://app.example', SEED_USERS });
  });
  afterAll(() => server?.kill());

  it('lets an allowed browser origin call the API with Watch-Token and read Location', async () => {
    const preflight = await fetch(`${server.url}/v1/flows/qr:x`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'watch-token' },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('watch-token');
    const post = await fetch(`${server.url}/v1/qr`, { method: 'POST', headers: { origin: 'https://app.example' } });
    expect(post.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(post.headers.get('access-control-expose-headers')).toContain('location');
    const other = await fetch(`${server.url}/v1/qr`, { method: 'POST', headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('counts flows created and finished by kind and final state', async () => {
    const qr = await http(server.url, 'POST', '/v1/qr');
    await http(server.url, 'DELETE', `/v1/qr/${qr.body.id}`, { headers: { 'watch-token': qr.body.watchToken } });
    const metrics = (await http(server.url, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/handoff_flows_created_total\{kind="qr"\} [1-9]/);
    expect(metrics).toMatch(/handoff_flows_finished_total\{kind="qr",state="cancelled"\} 1/);
  });
});
