/**
 * Handoff in front of an app (contract §7): the app's own tokens act everywhere a built-in JWT
 * does, a redeem hands an app user a signed assertion that verifies against
 * /.well-known/jwks.json, passwords are checked by the app's CREDENTIALS_URL, and ACCOUNTS=both
 * keeps built-in accounts working. Embedded and Redis; real HTTP, sockets and JWKS.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, createLocalJWKSet, exportSPKI, generateKeyPair, jwtVerify } from 'jose';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/src/config.js';
import { connectSocketIo, emitAck, http, recordSocketIo, WsClient } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, useRedisServer, type InProcessServer } from '../harness/in-process.js';

const redis = useRedisServer();
const ISSUER = 'https://acme.test';
const AUDIENCE = 'handoff';
const CREDENTIALS_SECRET = 'acme-credentials-secret-0123456789';

/** The app's own RS256 keys and tokens. */
async function appKeys() {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const token = (sub: string, claims: Record<string, unknown> = {}) =>
    new SignJWT({ name: `User ${sub}`, picture: `https://acme.test/${sub}.png`, ...claims })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(sub)
      .setExpirationTime('5m')
      .sign(privateKey);
  return { pem: await exportSPKI(publicKey), token };
}

/** The app's credentials endpoint: checks the Standard Webhooks signature, knows one password. */
async function credentialsEndpoint(): Promise<{ url: string; close(): Promise<void>; down(): void; hits: number }> {
  const verifier = new Webhook(Buffer.from(CREDENTIALS_SECRET).toString('base64'));
  let up = true;
  const state = { hits: 0 };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      state.hits++;
      if (!up) return void res.writeHead(500).end('down');
      try {
        verifier.verify(raw, req.headers as Record<string, string>);
      } catch {
        return void res.writeHead(401).end();
      }
      const { login, password } = JSON.parse(raw);
      const ok = login === 'zoe' && password === 'zoe-password';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { ok: true, user: { id: 'acme-zoe', displayName: 'Zoe', avatarUrl: null } } : { ok: false }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/handoff/credentials`,
    close: () => new Promise((r) => server.close(() => r())),
    down: () => (up = false),
    get hits() {
      return state.hits;
    },
  };
}

/** Verify an assertion the way the app's backend does: against the server's JWKS. */
async function verifyAssertion(base: string, token: string) {
  const jwks = await fetch(`${base}/.well-known/jwks.json`);
  expect(jwks.status).toBe(200);
  expect(jwks.headers.get('cache-control')).toBe('public, max-age=300');
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(await jwks.json()), { issuer: 'handoff', audience: 'acme-web' });
  return { payload, protectedHeader };
}

describe('app identity: configuration', () => {
  it('ACCOUNTS=app without an app-token source, or without ASSERTION_AUDIENCE, is refused at start naming the variable', () => {
    expect(() => loadConfig({ ACCOUNTS: 'app', ASSERTION_AUDIENCE: 'x' })).toThrow(/^ACCOUNTS: /);
    expect(() => loadConfig({ ACCOUNTS: 'app', APP_JWT_SECRET: 's'.repeat(32), APP_JWT_ISSUER: 'i', APP_JWT_AUDIENCE: 'a' })).toThrow(/^ASSERTION_AUDIENCE: /);
    expect(() => loadConfig({ CREDENTIALS_URL: 'http://127.0.0.1:1/c', CREDENTIALS_SECRET: 'c'.repeat(32) })).toThrow(ConfigError);
  });
});

describe.each(STORE_MODES)('app identity ($name)', (mode) => {
  let app: InProcessServer;
  let keys: Awaited<ReturnType<typeof appKeys>>;
  let creds: Awaited<ReturnType<typeof credentialsEndpoint>>;
  beforeAll(async () => {
    keys = await appKeys();
    creds = await credentialsEndpoint();
    app = await startInProcess(
      testConfig(mode, redis, 'app-identity', {
        ACCOUNTS: 'both',
        APP_JWT_PUBLIC_KEY: keys.pem,
        APP_JWT_ISSUER: ISSUER,
        APP_JWT_AUDIENCE: AUDIENCE,
        ASSERTION_AUDIENCE: 'acme-web',
        CREDENTIALS_URL: creds.url,
        CREDENTIALS_SECRET,
        LOGIN_TTL_SECONDS: '30',
      }),
    );
  });
  afterAll(async () => {
    await app?.close();
    await creds?.close();
  });

  it('a phone with the app token scans and confirms over HTTP; the browser redeems an assertion the app backend can verify', async () => {
    const qr = (await http(app.base, 'POST', '/v1/qr')).body;
    const bearer = { authorization: `Bearer ${await keys.token('acme-ana')}` };
    const scan = await http(app.base, 'POST', `/v1/qr/${qr.id}/scan`, { headers: bearer });
    expect(scan).toMatchObject({ status: 200, body: { state: 'scanned', scannedBy: { userId: 'acme-ana', displayName: 'User acme-ana', avatarUrl: 'https://acme.test/acme-ana.png' } } });
    // The scanner watches the flow with its app token, no watch token.
    expect(await http(app.base, 'GET', `/v1/flows/${qr.topic}`, { headers: bearer })).toMatchObject({ status: 200, body: { state: 'scanned' } });
    expect((await http(app.base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: bearer })).status).toBe(200);
    const redeemed = await http(app.base, 'POST', `/v1/flows/${qr.topic}/session`, { headers: { 'watch-token': qr.watchToken } });
    expect(redeemed).toMatchObject({ status: 200, body: { tokenType: 'assertion', user: { id: 'acme-ana', displayName: 'User acme-ana' } } });
    const { payload, protectedHeader } = await verifyAssertion(app.base, redeemed.body.token);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: expect.any(String) });
    expect(payload).toMatchObject({ sub: 'acme-ana', amr: ['qr'], flow: qr.topic, name: 'User acme-ana', picture: 'https://acme.test/acme-ana.png' });
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(typeof payload.jti).toBe('string');
    expect((await http(app.base, 'POST', `/v1/flows/${qr.topic}/session`, { headers: { 'watch-token': qr.watchToken } })).status).toBe(410);
  });

  it('the app token authenticates the Socket.IO handshake and /v1/ws, and a bad one is refused', async () => {
    const token = await keys.token('acme-bo');
    const qr = (await http(app.base, 'POST', '/v1/qr')).body;
    const phone = await connectSocketIo(app.base, { token });
    const ws = await WsClient.connect(app.base, { authorization: `Bearer ${token}` });
    try {
      expect(await emitAck(phone, 'qr:scan', { id: qr.id })).toMatchObject({ ok: true, state: { scannedBy: { userId: 'acme-bo' } } });
      expect(await ws.request('qr.confirm', { id: qr.id })).toMatchObject({ ok: true, state: { state: 'confirmed' } });
      // Bound as the app user over the sockets too: the redeem is that user's assertion.
      const redeemed = await http(app.base, 'POST', `/v1/flows/${qr.topic}/session`, { headers: { 'watch-token': qr.watchToken } });
      expect(redeemed).toMatchObject({ status: 200, body: { tokenType: 'assertion', user: { id: 'acme-bo' } } });
      await expect(connectSocketIo(app.base, { token: `${token}x` })).rejects.toMatchObject({ message: 'unauthorized' });
      await expect(WsClient.connect(app.base, { authorization: 'Bearer not-a-token' })).rejects.toMatchObject({ status: 401 });
    } finally {
      phone.close();
      ws.close();
    }
  });

  it('ACCOUNTS=both: a built-in account still gets a session, and an app sub equal to its id cannot act for it', async () => {
    const user = await app.server.handoff.users.create({ email: `both-${mode.name}@example.com`, password: 'correct horse battery', displayName: 'Built' });
    // With CREDENTIALS_URL every password goes to the app (contract §7), so the session is minted here.
    const session = { body: await app.server.handoff.users.issueSession(user.id) };
    expect(session.body).toMatchObject({ tokenType: 'session', user: { id: user.id, email: user.email } });
    expect(await http(app.base, 'GET', '/v1/me', { headers: { authorization: `Bearer ${session.body.token}` } })).toMatchObject({ status: 200, body: { id: user.id, email: user.email } });
    expect(await http(app.base, 'GET', '/v1/me', { headers: { authorization: `Bearer ${await keys.token('acme-me')}` } })).toMatchObject({
      status: 200,
      body: { id: 'acme-me', displayName: 'User acme-me' },
    });
    const qr = (await http(app.base, 'POST', '/v1/qr')).body;
    await http(app.base, 'POST', `/v1/qr/${qr.id}/scan`, { headers: { authorization: `Bearer ${session.body.token}` } });
    // An app user whose sub happens to be that account's id is someone else.
    const impostor = { authorization: `Bearer ${await keys.token(user.id)}` };
    expect(await http(app.base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: impostor })).toMatchObject({ status: 403, body: { error: { code: 'not_scanner' } } });
    expect((await http(app.base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: { authorization: `Bearer ${session.body.token}` } })).status).toBe(200);
    const redeemed = await http(app.base, 'POST', `/v1/flows/${qr.topic}/session`, { headers: { 'watch-token': qr.watchToken } });
    expect(redeemed.body).toMatchObject({ tokenType: 'session', user: { id: user.id } });
  });

  it('a password checked by the app: sync login answers an assertion (amr pwd); a wrong one is 401', async () => {
    const ok = await http(app.base, 'POST', '/v1/sessions', { body: { login: 'zoe', password: 'zoe-password' } });
    expect(ok).toMatchObject({ status: 200, body: { tokenType: 'assertion', user: { id: 'acme-zoe', displayName: 'Zoe' } } });
    const { payload } = await verifyAssertion(app.base, ok.body.token);
    expect(payload).toMatchObject({ sub: 'acme-zoe', amr: ['pwd'] });
    const wrong = await http(app.base, 'POST', '/v1/sessions', { body: { login: 'zoe', password: 'nope' } });
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
    // `login` is `email` under the app's name: one of them.
    const both = await http(app.base, 'POST', '/v1/sessions', { body: { login: 'zoe', email: 'zoe', password: 'zoe-password' } });
    expect(both).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
  });

  it('an async password login checked by the app is pushed succeeded, then redeems an assertion', async () => {
    const accepted = await http(app.base, 'POST', '/v1/sessions', { body: { login: 'zoe', password: 'zoe-password' }, headers: { prefer: 'respond-async' } });
    expect(accepted.status).toBe(202);
    const socket = await connectSocketIo(app.base);
    try {
      const pushes = recordSocketIo(socket);
      const sub = await emitAck(socket, 'subscribe', { topic: accepted.body.topic, watchToken: accepted.body.watchToken });
      if (sub.state.state !== 'succeeded') await pushes.waitForState('succeeded', 10_000);
    } finally {
      socket.close();
    }
    const redeemed = await http(app.base, 'POST', `/v1/flows/${accepted.body.topic}/session`, { headers: { 'watch-token': accepted.body.watchToken } });
    expect(redeemed).toMatchObject({ status: 200, body: { tokenType: 'assertion', user: { id: 'acme-zoe' } } });
    const { payload } = await verifyAssertion(app.base, redeemed.body.token);
    expect(payload).toMatchObject({ sub: 'acme-zoe', amr: ['pwd'], flow: accepted.body.topic });
  });
});

describe('app identity: the credentials endpoint is down', () => {
  it('sync: 503 unavailable; async: failed with unavailable after the retries', async () => {
    const keys = await appKeys();
    const creds = await credentialsEndpoint();
    creds.down();
    const app = await startInProcess(
      testConfig(STORE_MODES[0], redis, 'app-identity-down', {
        ACCOUNTS: 'app',
        APP_JWT_PUBLIC_KEY: keys.pem,
        APP_JWT_ISSUER: ISSUER,
        APP_JWT_AUDIENCE: AUDIENCE,
        ASSERTION_AUDIENCE: 'acme-web',
        CREDENTIALS_URL: creds.url,
        CREDENTIALS_SECRET,
      }),
    );
    try {
      expect(await http(app.base, 'POST', '/v1/sessions', { body: { login: 'zoe', password: 'zoe-password' } })).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
      const accepted = await http(app.base, 'POST', '/v1/sessions', { body: { login: 'zoe', password: 'zoe-password' }, headers: { prefer: 'respond-async' } });
      let state = accepted.body;
      while (state.state !== 'failed') {
        state = (await http(app.base, 'GET', `/v1/flows/${accepted.body.topic}?after=${state.version}&wait=10`, { headers: { 'watch-token': accepted.body.watchToken } })).body;
      }
      expect(state).toMatchObject({ state: 'failed', error: { code: 'unavailable' } });
      // ACCOUNTS=app: no built-in session is accepted, and Handoff stored no user.
      expect(await app.server.handoff.users.store.byEmail('zoe')).toBeNull();
    } finally {
      await app.close();
      await creds.close();
    }
  });

  it('Redis mode: two nodes without ASSERTION_SIGNING_KEY publish the same JWKS (one shared development key)', async () => {
    const keys = await appKeys();
    const env = { ACCOUNTS: 'app', APP_JWT_PUBLIC_KEY: keys.pem, APP_JWT_ISSUER: ISSUER, APP_JWT_AUDIENCE: AUDIENCE, ASSERTION_AUDIENCE: 'acme-web' };
    const config = testConfig(STORE_MODES[1], redis, 'app-identity-devkey', env);
    const [a, b] = [await startInProcess(config), await startInProcess({ ...config })];
    try {
      const [ja, jb] = await Promise.all([a, b].map(async (n) => (await http(n.base, 'GET', '/.well-known/jwks.json')).body));
      expect(ja.keys).toHaveLength(1);
      expect(jb).toEqual(ja);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
