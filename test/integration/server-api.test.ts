/**
 * The server API for the app's backend (contract §7), in embedded and Redis mode: the whole QR
 * flow driven by the backend with an X-Api-Key, acting as its own users; keys checked (and never
 * logged), limited and counted per key name; bad input refused with its catalogue error; and no
 * route at all without API_KEYS.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Handoff } from '@handoff/client-sdk';
import { connectSocketIo, emitAck, http, recordSocketIo } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, useRedisServer, type InProcessServer } from '../harness/in-process.js';
import { sampleSum, scrape } from '../harness/prometheus.js';

const ACME_KEY = 'acme-backend-key-0123456789abcdefghijklmnop';
const OPS_KEY = 'ops-tooling-key-ZYXWVUTSRQPONMLKJIHGFEDCBA987';
const API_KEYS = `acme:${ACME_KEY},ops:${OPS_KEY}`;

const acme = { 'x-api-key': ACME_KEY };
const ops = { 'x-api-key': OPS_KEY };
const ANA_APP = { id: 'acme-user-42', displayName: 'Ana at Acme', avatarUrl: 'https://acme.example/avatars/42.png' };

/** A server whose every log line (trace and up) is kept, to check that no key reaches one. */
async function startLogged(config: Parameters<typeof startInProcess>[0]): Promise<{ server: InProcessServer; logs: string[] }> {
  const logs: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void logs.push(line) });
  return { server: await startInProcess(config, logger), logs };
}

describe.each(STORE_MODES)('server API ($name)', (mode) => {
  const redis = useRedisServer();
  let server: InProcessServer;
  let base: string;
  let logs: string[];

  beforeAll(async () => {
    ({ server, logs } = await startLogged(testConfig(mode, redis, 'server-api', { API_KEYS })));
    base = server.base;
  });
  afterAll(() => server?.close());

  const create = async (body: unknown = {}) => {
    const res = await http(base, 'POST', '/v1/server/qr', { headers: acme, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; topic: string; watchToken: string; [k: string]: unknown };
  };

  it('drives the whole QR flow: created with the requester and context, scanned and confirmed as an app user, pushed to the browser', async () => {
    const context = { orderId: 'A-1001', note: 'Sign in to pay €12.00', items: [1, 2, 3] };
    const flow = await create({ requester: { ip: '203.0.113.7', userAgent: 'Firefox/140.0 (Acme checkout)' }, context });
    expect(flow).toMatchObject({ topic: `qr:${flow.id}`, state: 'pending', version: 1, watchToken: expect.any(String) });
    expect(flow.qrPayload).toContain(flow.id);
    expect(flow.imageUrl).toBe(`${base}/v1/qr/${flow.id}/image.svg`);

    // The browser watches with its watch token: a socket subscriber and a held long-poll.
    const socket = await connectSocketIo(base);
    try {
      const pushes = recordSocketIo(socket);
      const sub = await emitAck(socket, 'subscribe', { topic: flow.topic, watchToken: flow.watchToken });
      expect(sub).toMatchObject({ ok: true, state: { state: 'pending', version: 1 } });
      const longPoll = http(base, 'GET', `/v1/flows/${flow.topic}?after=2&wait=20`, { headers: { 'watch-token': flow.watchToken } });

      const scan = await http(base, 'POST', `/v1/server/qr/${flow.id}/scan`, { headers: acme, body: { user: ANA_APP } });
      expect(scan.status, JSON.stringify(scan.body)).toBe(200);
      expect(scan.body).toEqual({
        topic: flow.topic,
        kind: 'qr',
        id: flow.id,
        state: 'scanned',
        version: 2,
        expiresAt: flow.expiresAt,
        scannedBy: { userId: ANA_APP.id, displayName: ANA_APP.displayName, avatarUrl: ANA_APP.avatarUrl },
        requester: { ip: '203.0.113.7', userAgent: 'Firefox/140.0 (Acme checkout)', createdAt: expect.any(String) },
        context,
      });
      expect((await pushes.waitForState('scanned')).scannedBy).toEqual(scan.body.scannedBy);

      // Only the app user who scanned may confirm.
      const other = await http(base, 'POST', `/v1/server/qr/${flow.id}/confirm`, { headers: acme, body: { user: { id: 'acme-user-7' } } });
      expect(other.status).toBe(403);
      expect(other.body.error.code).toBe('not_scanner');

      const confirm = await http(base, 'POST', `/v1/server/qr/${flow.id}/confirm`, { headers: acme, body: { user: { id: ANA_APP.id } } });
      expect(confirm.status).toBe(200);
      expect(confirm.body).toMatchObject({ state: 'confirmed', version: 3 });

      expect(await pushes.waitForState('confirmed')).toMatchObject({ topic: flow.topic, version: 3 });
      const held = await longPoll;
      expect(held.status).toBe(200);
      expect(held.body).toMatchObject({ state: 'confirmed', version: 3, scannedBy: { userId: ANA_APP.id } });

      const read = await http(base, 'GET', `/v1/server/flows/${flow.topic}`, { headers: ops });
      expect(read.status).toBe(200);
      expect(read.body).toEqual(confirm.body);
      expect(read.headers.get('cache-control')).toBe('no-store');
    } finally {
      socket.close();
    }
  });

  it("shows the backend's requester and context on the phone app's own scan (Bearer JWT)", async () => {
    const handoff = server.server.handoff;
    const user = await handoff.users.create({ email: `ana-${mode.name}@example.com`, password: 'ana-password-123', displayName: 'Ana' });
    const { token } = await handoff.users.issueSession(user.id);
    const flow = await create({ requester: { ip: '2001:db8::1', userAgent: 'Safari/18' }, context: { shop: 'Acme' } });
    const scan = await http(base, 'POST', `/v1/qr/${flow.id}/scan`, { headers: { authorization: `Bearer ${token}` } });
    expect(scan.status).toBe(200);
    expect(scan.body).toMatchObject({
      state: 'scanned',
      scannedBy: { userId: user.id, displayName: 'Ana' },
      requester: { ip: '2001:db8::1', userAgent: 'Safari/18' },
      context: { shop: 'Acme' },
    });
  });

  it("the SDK's scan() shows the context too, over its socket and over HTTP", async () => {
    const handoff = server.server.handoff;
    const user = await handoff.users.create({ email: `sdk-${mode.name}@example.com`, password: 'ana-password-123', displayName: 'Sdk' });
    const { token } = await handoff.users.issueSession(user.id);
    const phone = new Handoff({ url: base, token });
    try {
      // Not connected yet: the scan goes over HTTP; once connected, over the socket's ack.
      const overHttp = await create({ context: { shop: 'Acme', order: 42 } });
      expect(await phone.scan(overHttp.id)).toMatchObject({ state: { state: 'scanned' }, context: { shop: 'Acme', order: 42 } });
      expect(await phone.connect()).toBe('connected');
      const overSocket = await create({ context: { shop: 'Acme', order: 43 } });
      expect(await phone.scan(overSocket.id)).toMatchObject({ state: { state: 'scanned' }, context: { shop: 'Acme', order: 43 } });
    } finally {
      phone.close();
    }
  });

  it("shows the context on a socket scan too (qr:scan ack)", async () => {
    const handoff = server.server.handoff;
    const user = await handoff.users.create({ email: `bo-${mode.name}@example.com`, password: 'bo-password-1234', displayName: 'Bo' });
    const { token } = await handoff.users.issueSession(user.id);
    const flow = await create({ context: { shop: 'Acme', step: 2 } });
    const phone = await connectSocketIo(base, { token });
    try {
      const ack = await emitAck(phone, 'qr:scan', { id: flow.id });
      expect(ack).toMatchObject({ ok: true, state: { state: 'scanned' }, context: { shop: 'Acme', step: 2 } });
    } finally {
      phone.close();
    }
  });

  it('a flow without a context has none on the scan answer, and a missing requester is the caller itself', async () => {
    const res = await http(base, 'POST', '/v1/server/qr', { headers: { ...acme, 'user-agent': 'AcmeBackend/2.1' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const scan = await http(base, 'POST', `/v1/server/qr/${res.body.id}/scan`, { headers: acme, body: { user: { id: 'u1' } } });
    expect(scan.status).toBe(200);
    expect(scan.body.requester).toMatchObject({ ip: '127.0.0.1', userAgent: 'AcmeBackend/2.1' });
    expect(scan.body).not.toHaveProperty('context');
    // displayName defaults to the id; no avatar.
    expect(scan.body.scannedBy).toEqual({ userId: 'u1', displayName: 'u1', avatarUrl: null });
  });

  it('cancels with DELETE, without a watch token, and the browser is pushed the cancel', async () => {
    const flow = await create();
    const socket = await connectSocketIo(base);
    try {
      const pushes = recordSocketIo(socket);
      await emitAck(socket, 'subscribe', { topic: flow.topic, watchToken: flow.watchToken });
      const res = await http(base, 'DELETE', `/v1/server/qr/${flow.id}`, { headers: acme });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ state: 'cancelled', version: 2 });
      expect(await pushes.waitForState('cancelled')).toMatchObject({ version: 2 });
      const again = await http(base, 'DELETE', `/v1/server/qr/${flow.id}`, { headers: acme });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ error: { code: 'invalid_transition' }, state: { state: 'cancelled' } });
    } finally {
      socket.close();
    }
  });

  it('the app user who scanned may decline (cancel), nobody else', async () => {
    const flow = await create();
    await http(base, 'POST', `/v1/server/qr/${flow.id}/scan`, { headers: acme, body: { user: { id: 'scanner' } } });
    const stranger = await http(base, 'POST', `/v1/server/qr/${flow.id}/cancel`, { headers: acme, body: { user: { id: 'stranger' } } });
    expect(stranger.status).toBe(403);
    const res = await http(base, 'POST', `/v1/server/qr/${flow.id}/cancel`, { headers: acme, body: { user: { id: 'scanner' } } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: 'cancelled', version: 3 });
  });

  it('an app user never passes for a built-in account with the same id', async () => {
    const handoff = server.server.handoff;
    const user = await handoff.users.create({ email: `twin-${mode.name}@example.com`, password: 'twin-password-123', displayName: 'Twin' });
    const { token } = await handoff.users.issueSession(user.id);
    const flow = await create();
    await http(base, 'POST', `/v1/server/qr/${flow.id}/scan`, { headers: acme, body: { user: { id: user.id } } });
    const res = await http(base, 'POST', `/v1/qr/${flow.id}/confirm`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('not_scanner');
  });

  it('reads any flow without its watch token, and answers 404 for an unknown one', async () => {
    const browserFlow = (await http(base, 'POST', '/v1/qr')).body as { topic: string };
    const read = await http(base, 'GET', `/v1/server/flows/${encodeURIComponent(browserFlow.topic)}`, { headers: acme });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ topic: browserFlow.topic, state: 'pending', version: 1 });
    expect(read.body).not.toHaveProperty('watchToken');
    for (const topic of ['qr:no-such-flow', 'login:no-such-flow', 'nonsense']) {
      const res = await http(base, 'GET', `/v1/server/flows/${topic}`, { headers: acme });
      expect(res.status, topic).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('refuses a missing, empty, short, over-long or wrong key with 401 unauthorized, and logs no key', async () => {
    const wrong = 'x'.repeat(ACME_KEY.length);
    const presented = [undefined, '', ACME_KEY.slice(0, 31), ACME_KEY.slice(0, -1), `${ACME_KEY}x`, wrong, ACME_KEY.toUpperCase(), 'k'.repeat(600)];
    for (const key of presented) {
      const headers: Record<string, string> = key === undefined ? {} : { 'x-api-key': key };
      const res = await http(base, 'POST', '/v1/server/qr', { headers, body: {} });
      expect(res.status, `key ${JSON.stringify(key?.slice(0, 8))}`).toBe(401);
      expect(res.body.error.code).toBe('unauthorized');
    }
    // The key is checked before the body: a bad body with a bad key is still 401.
    expect((await http(base, 'POST', '/v1/server/qr', { headers: { 'x-api-key': wrong }, raw: '{not json' })).status).toBe(401);
    const flow = await create();
    expect((await http(base, 'GET', `/v1/server/flows/${flow.topic}`, { headers: ops })).status).toBe(200);
    const all = logs.join('');
    expect(all).toContain('request completed');
    for (const key of [ACME_KEY, OPS_KEY, wrong, ACME_KEY.slice(0, 31)]) expect(all).not.toContain(key);
  });

  it('refuses a context over 1 KiB of JSON with 400 naming context', async () => {
    const big = { blob: 'x'.repeat(1024) };
    const res = await http(base, 'POST', '/v1/server/qr', { headers: acme, body: { context: big } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'bad_request', message: expect.stringContaining('context') });
    // Exactly 1024 bytes of JSON (multi-byte characters count as bytes) is accepted.
    const fits = { blob: `${'é'.repeat(506)}a` };
    expect(Buffer.byteLength(JSON.stringify(fits))).toBe(1024);
    expect((await http(base, 'POST', '/v1/server/qr', { headers: acme, body: { context: fits } })).status).toBe(201);
    for (const context of [[1, 2], 'text', null, 42]) {
      const bad = await http(base, 'POST', '/v1/server/qr', { headers: acme, body: { context } });
      expect(bad.status, JSON.stringify(context)).toBe(400);
      expect(bad.body.error.message).toContain('context');
    }
  });

  it('refuses a requester whose ip is not an IP address, and an over-long user agent', async () => {
    for (const ip of ['not-an-ip', '300.1.1.1', '', '203.0.113.7:8080']) {
      const res = await http(base, 'POST', '/v1/server/qr', { headers: acme, body: { requester: { ip, userAgent: 'UA' } } });
      expect(res.status, ip).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'bad_request', message: expect.stringContaining('requester.ip') });
    }
    const longUa = await http(base, 'POST', '/v1/server/qr', { headers: acme, body: { requester: { ip: '203.0.113.7', userAgent: 'u'.repeat(513) } } });
    expect(longUa.status).toBe(400);
    expect(longUa.body.error.message).toContain('requester.userAgent');
  });

  it('refuses a bad app user: no id, an id over 255 characters, a long name, a non-http avatar', async () => {
    const flow = await create();
    const bad: Array<[unknown, string]> = [
      [{}, 'user'],
      [{ user: {} }, 'user.id'],
      [{ user: { id: '' } }, 'user.id'],
      [{ user: { id: 'i'.repeat(256) } }, 'user.id'],
      [{ user: { id: 'u', displayName: 'n'.repeat(101) } }, 'user.displayName'],
      [{ user: { id: 'u', avatarUrl: 'javascript:alert(1)' } }, 'user.avatarUrl'],
      [{ user: { id: 'u', avatarUrl: `https://a.example/${'p'.repeat(2048)}` } }, 'user.avatarUrl'],
      [{ user: { id: 42 } }, 'user.id'],
    ];
    for (const [body, field] of bad) {
      const res = await http(base, 'POST', `/v1/server/qr/${flow.id}/scan`, { headers: acme, body });
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect(res.body.error.message).toContain(field);
    }
    // Nothing was scanned by any of them.
    expect((await http(base, 'GET', `/v1/server/flows/${flow.topic}`, { headers: acme })).body.state).toBe('pending');
  });

  it('counts requests by key name, route and status', async () => {
    const before = await scrape(base);
    const count = (families: typeof before, labels: Record<string, string>) => sampleSum(families, 'handoff_server_api_requests_total', labels);
    await create();
    await create();
    await http(base, 'GET', '/v1/server/flows/qr:nope', { headers: ops });
    await http(base, 'POST', '/v1/server/qr', { headers: { 'x-api-key': 'w'.repeat(40) } });
    const after = await scrape(base);
    const diff = (labels: Record<string, string>) => count(after, labels) - count(before, labels);
    expect(diff({ key: 'acme', route: '/v1/server/qr', status: '201' })).toBe(2);
    expect(diff({ key: 'ops', route: '/v1/server/flows/:topic', status: '404' })).toBe(1);
    expect(diff({ key: '(none)', route: '/v1/server/qr', status: '401' })).toBe(1);
    // Key names label the metric; keys never appear in it.
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).not.toContain(ACME_KEY);
  });

  it('documents the routes in the OpenAPI document with the apiKey security scheme', async () => {
    const res = await fetch(`${base}/docs/openapi.json`);
    const text = await res.text();
    const doc = JSON.parse(text);
    await expect(SwaggerParser.validate(JSON.parse(text))).resolves.toBeTruthy();
    const problems = await lintFromString({ source: text, absoluteRef: 'openapi.json', config: await createConfig({ extends: ['recommended'] }) });
    expect(problems.filter((p) => p.severity === 'error').map((p) => p.message)).toEqual([]);
    // As without API_KEYS: only the operator endpoints warn (they answer no 4xx).
    expect(problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}`).sort()).toEqual(
      ['/healthz', '/metrics', '/readyz'].map((path) => `operation-4xx-response #/paths/~1${path.slice(1)}/get/responses`),
    );
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Api-Key' });
    const paths = ['/v1/server/qr', '/v1/server/qr/{id}/scan', '/v1/server/qr/{id}/confirm', '/v1/server/qr/{id}/cancel', '/v1/server/qr/{id}', '/v1/server/flows/{topic}'];
    for (const path of paths) {
      for (const [method, op] of Object.entries(doc.paths[path] as Record<string, { security: unknown; parameters?: Array<{ name: string }> }>)) {
        expect(op.security, `${method} ${path}`).toEqual([{ apiKey: [] }]);
        expect((op.parameters ?? []).map((p) => p.name.toLowerCase())).not.toContain('x-api-key');
      }
    }
    expect(doc.paths['/v1/qr/{id}/scan'].post.responses['200'].content['application/json'].schema).toBeDefined();
  });
});

describe.each(STORE_MODES)('server API rate limit per key ($name)', (mode) => {
  const redis = useRedisServer();
  let server: InProcessServer;

  beforeAll(async () => {
    server = await startInProcess(testConfig(mode, redis, 'server-api-limit', { API_KEYS, API_KEY_PER_MINUTE: '3' }));
  });
  afterAll(() => server?.close());

  it('answers 429 rate_limited with Retry-After once a key spent its minute, and the other key still works', async () => {
    for (let i = 0; i < 3; i++) expect((await http(server.base, 'GET', '/v1/server/flows/qr:x', { headers: acme })).status).toBe(404);
    const limited = await http(server.base, 'POST', '/v1/server/qr', { headers: acme, body: {} });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect((await http(server.base, 'POST', '/v1/server/qr', { headers: ops, body: {} })).status).toBe(201);
    const families = await scrape(server.base);
    expect(sampleSum(families, 'handoff_rate_limited_total', { limit: 'api-key' })).toBe(1);
    expect(sampleSum(families, 'handoff_server_api_requests_total', { key: 'acme', status: '429' })).toBe(1);
  });
});

describe('without API_KEYS', () => {
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcess(testConfig(STORE_MODES[0], { url: '' }, 'server-api-off'));
  });
  afterAll(() => server?.close());

  it('has no server API: every route answers 404, whatever key is sent', async () => {
    const calls: Array<[string, string, unknown?]> = [
      ['POST', '/v1/server/qr', {}],
      ['POST', '/v1/server/qr/abc/scan', { user: { id: 'u' } }],
      ['POST', '/v1/server/qr/abc/confirm', { user: { id: 'u' } }],
      ['POST', '/v1/server/qr/abc/cancel', { user: { id: 'u' } }],
      ['DELETE', '/v1/server/qr/abc'],
      ['GET', '/v1/server/flows/qr:abc'],
    ];
    for (const [method, path, body] of calls) {
      const res = await http(server.base, method, path, { headers: acme, body });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });
});

describe("the server's logger", () => {
  it('redacts the X-Api-Key request header', async () => {
    // The real createLogger writes to stdout: run it in a child process and read what it wrote.
    const script = `
      import { createLogger } from './server/src/core.ts';
      import { loadConfig } from './server/src/config.ts';
      const log = createLogger(loadConfig({ LOG_LEVEL: 'info' }));
      log.info({ req: { method: 'GET', url: '/v1/server/qr', headers: { 'x-api-key': process.env.PROBE_KEY } } }, 'probe');
    `;
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: root, env: { ...process.env, PROBE_KEY: ACME_KEY } },
    );
    const line = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(line.msg).toBe('probe');
    expect(line.req.headers['x-api-key']).toBe('[redacted]');
    expect(stdout).not.toContain(ACME_KEY);
  });
});
