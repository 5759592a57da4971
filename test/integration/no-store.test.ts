/**
 * `Cache-Control` is set in one place (server/src/http/no-store.ts): every answer of every route in
 * the route table is `no-store` unless its route declares otherwise for its successes, and every
 * error is `no-store` (contract §2: status reads carry `Cache-Control: no-store`). The route table
 * is read from the server itself, so a route added later is checked without editing this file.
 */
import Fastify from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HandoffApp } from '../../server/src/http/app-type.js';
import { noStore } from '../../server/src/http/no-store.js';
import { ANA, createQr, login } from '../harness/cluster.js';
import { STORE_MODES, startInProcess, testConfig, type InProcessServer } from '../harness/in-process.js';

/** Routes whose successful answers may be cached, and how; every other answer is `no-store`. */
const CACHEABLE: Record<string, string> = {
  'GET /v1/qr/:id/image.svg': 'private, max-age=300',
  'GET /docs/openapi.json': 'no-cache',
  'GET /': 'no-cache',
  'GET /app': 'no-cache',
  'GET /demo/:file': 'no-cache',
  'GET /sdk/handoff.iife.js': 'no-cache',
  'GET /sdk/handoff.iife.js.map': 'no-cache',
};

/** Every (method, url) of the server, from `printRoutes` (a tree of path segments). */
function routeTable(app: HandoffApp): Array<{ method: string; url: string }> {
  const routes: Array<{ method: string; url: string }> = [];
  const segments: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^(.*?)(?:├── |└── )(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1].length / 4;
    segments.length = depth;
    segments.push(m[2]);
    for (const method of m[3]?.split(', ') ?? []) routes.push({ method, url: segments.join('') });
  }
  return routes;
}

/** The `Cache-Control` an answer of `route` with `status` must carry. */
function expectedCacheControl(route: { method: string; url: string }, status: number): string {
  if (status >= 400) return 'no-store';
  return CACHEABLE[`${route.method === 'HEAD' ? 'GET' : route.method} ${route.url}`] ?? 'no-store';
}

describe('Cache-Control on every route', () => {
  let server: InProcessServer;
  let routes: Array<{ method: string; url: string }>;

  beforeAll(async () => {
    server = await startInProcess(testConfig(STORE_MODES[0], { url: '' }, 'no-store'));
    await server.server.handoff.users.create(ANA);
    routes = routeTable(server.server.app);
  });
  afterAll(() => server?.close());

  /** One request per route; `credentials`: Ana's JWT, a flow's watch token, and her password where a body wants one. */
  async function askEveryRoute(credentials: boolean): Promise<Array<{ route: string; status: number; cacheControl: string | null; expected: string }>> {
    // The browser's cancel gets a flow of its own, so scan → confirm → redeem succeed on the other.
    const qr = await createQr(server.base);
    const cancelled = await createQr(server.base);
    const jwt = credentials ? await login(server.base, ANA) : undefined;
    const answers = [];
    for (const route of routes) {
      const flow = route.method === 'DELETE' ? cancelled : qr;
      const headers: Record<string, string> = credentials ? { authorization: `Bearer ${jwt}`, 'watch-token': flow.watchToken } : {};
      const path = route.url === '*' ? '/v1/qr' : route.url
        .replace(':id', flow.id)
        .replace(':topic', flow.topic)
        .replace(':file', credentials ? 'demo.css' : 'no-such-file.css');
      const body = route.method !== 'POST' ? undefined : route.url === '/v1/sessions' && credentials ? JSON.stringify({ email: ANA.email, password: ANA.password }) : '{}';
      const res = await fetch(server.base + path, {
        method: route.method,
        headers: {
          ...headers,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(route.method === 'OPTIONS' ? { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' } : {}),
        },
        body,
      });
      await res.arrayBuffer();
      answers.push({
        route: `${route.method} ${route.url}`,
        status: res.status,
        cacheControl: res.headers.get('cache-control'),
        expected: expectedCacheControl(route, res.status),
      });
    }
    return answers;
  }

  it('reads the whole route table, API, operations, documents and demo pages', () => {
    const names = routes.map((r) => `${r.method} ${r.url}`);
    for (const name of ['GET /v1/flows/:topic', 'POST /v1/flows/:topic/session', 'POST /v1/qr', 'DELETE /v1/qr/:id', 'GET /v1/qr/:id/image.svg', 'POST /v1/sessions', 'GET /v1/me', 'POST /v1/users', 'POST /v1/verification-codes', 'GET /readyz', 'GET /docs/openapi.json', 'GET /app']) {
      expect(names).toContain(name);
    }
  });

  it('every route answers an anonymous request (errors, mostly) with the Cache-Control it must', async () => {
    const answers = await askEveryRoute(false);
    expect(answers.filter((a) => a.status >= 400).length).toBeGreaterThan(10);
    expect(answers.filter((a) => a.cacheControl !== a.expected)).toEqual([]);
  });

  it('every route answers a request with credentials (successes, mostly) with the Cache-Control it must', async () => {
    const answers = await askEveryRoute(true);
    const status = (route: string) => answers.find((a) => a.route === route)?.status;
    expect(status('DELETE /v1/qr/:id')).toBe(200);
    expect(status('POST /v1/qr/:id/scan')).toBe(200);
    expect(status('POST /v1/qr/:id/confirm')).toBe(200);
    expect(status('GET /v1/flows/:topic')).toBe(200);
    expect(status('POST /v1/flows/:topic/session')).toBe(200);
    expect(status('GET /v1/qr/:id/image.svg')).toBe(200);
    expect(status('POST /v1/sessions')).toBe(200);
    expect(status('GET /v1/me')).toBe(200);
    expect(answers.filter((a) => a.cacheControl !== a.expected)).toEqual([]);
  });

  it('a long-poll answer is no-store', async () => {
    const qr = await createQr(server.base);
    const res = await fetch(`${server.base}/v1/flows/${qr.topic}?after=0&wait=1`, { headers: { 'watch-token': qr.watchToken } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('an error on the route whose successes are cacheable (the QR image of an unknown flow) is no-store', async () => {
    const res = await fetch(`${server.base}/v1/qr/unknown-flow/image.svg`);
    expect(res.status).toBe(404);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('an unknown route answers 404 with no-store', async () => {
    const res = await fetch(`${server.base}/v1/nothing-here`);
    expect(res.status).toBe(404);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});

describe('the no-store plugin on its own', () => {
  const app = Fastify({ loggerInstance: pino({ level: 'silent' }) });

  beforeAll(async () => {
    await app.register(noStore);
    app.get('/new-route', async () => ({ ok: true }));
    app.get('/cacheable', { config: { cacheControl: 'public, max-age=60' } }, async () => ({ ok: true }));
    app.get('/cacheable-but-failing', { config: { cacheControl: 'public, max-age=60' } }, async () => {
      throw new Error('boom');
    });
    await app.ready();
  });
  afterAll(() => app.close());

  it('a route that declares nothing answers no-store', async () => {
    const res = await app.inject({ method: 'GET', url: '/new-route' });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('a route that declares cacheControl answers with it', async () => {
    const res = await app.inject({ method: 'GET', url: '/cacheable' });
    expect(res.headers['cache-control']).toBe('public, max-age=60');
  });

  it('an error on a route that declares cacheControl is no-store, even from Fastify’s own error handler', async () => {
    const res = await app.inject({ method: 'GET', url: '/cacheable-but-failing' });
    expect(res.statusCode).toBe(500);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('Fastify’s own 404 is no-store', async () => {
    const res = await app.inject({ method: 'GET', url: '/nowhere' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['cache-control']).toBe('no-store');
  });
});
