/**
 * Handoff in front of an existing app (issue #14): examples/acme in its own process (SQLite users,
 * its own RS256 tokens and JWKS, its credentials endpoint, its own session cookie), two Handoff
 * API nodes (ACCOUNTS=app) on one Redis and a worker process, all over real HTTP. The browser
 * side talks to node A, Acme's phone app to node B.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Handoff, HandoffError, type FlowState, type Session } from '@handoff/client-sdk';
import { ACME_ANA, ACME_BOB, HAS_NODE_SQLITE, NO_SQLITE_REASON, acmeSetup, startAcmeProcess, type AcmeProcess, type AcmeSetup } from '../harness/acme.js';
import { http } from '../harness/clients.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';

if (!HAS_NODE_SQLITE) console.warn(`acme: ${NO_SQLITE_REASON}`);

describe.skipIf(!HAS_NODE_SQLITE)('Acme behind Handoff: two API nodes on one Redis, a worker, Acme, all real processes', { timeout: 30_000 }, () => {
  let setup: AcmeSetup;
  let redis: RedisHandle;
  let nodeA: ServerProcess;
  let nodeB: ServerProcess;
  let worker: ServerProcess;
  let acme: AcmeProcess;
  const clients: Handoff[] = [];

  beforeAll(async () => {
    [setup, redis] = await Promise.all([acmeSetup(), startRedis()]);
    const env = { ...setup.handoffEnv, REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('acme') };
    // Handoff fetches Acme's JWKS on the first token, so the nodes may start before Acme does.
    [nodeA, nodeB, worker] = await Promise.all([
      startServerProcess({ ...env, ROLE: 'api' }),
      startServerProcess({ ...env, ROLE: 'api' }),
      startServerProcess({ ...env, ROLE: 'worker', LOGIN_CONCURRENCY: '2' }),
    ]);
    acme = await startAcmeProcess(setup.acmePort, setup.acmeEnv(nodeA.url));
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all([nodeA?.kill(), nodeB?.kill(), worker?.kill(), acme?.stop()]);
    await redis?.stop();
    setup?.cleanup();
  });

  /** A Handoff SDK client (closed after the tests). */
  const client = (url: string, token?: () => Promise<string>): Handoff => {
    const c = new Handoff({ url, token });
    clients.push(c);
    return c;
  };

  /** What Acme's phone app does: sign in to Acme with a password, get an Acme token. */
  async function acmeToken(user: { login: string; password: string }): Promise<string> {
    const res = await http(acme.url, 'POST', '/api/login', { body: { login: user.login, password: user.password } });
    expect(res.status).toBe(200);
    return res.body.token;
  }

  /** What Acme's login page does with a redeemed assertion: post it to Acme's backend. */
  async function postAssertion(assertion: string): Promise<{ status: number; body: any; cookie: string | null }> {
    const res = await http(acme.url, 'POST', '/api/handoff/assertion', { body: { assertion } });
    return { status: res.status, body: res.body, cookie: res.headers.get('set-cookie') };
  }

  /** Acme's /api/me with the session cookie a Set-Cookie header gave. */
  async function acmeMe(setCookie: string) {
    return http(acme.url, 'GET', '/api/me', { headers: { cookie: setCookie.split(';')[0] } });
  }

  /** A QR login: the browser on node A, Acme's phone app (its Acme token) on node B over Socket.IO. */
  async function qrLogin(user: { login: string; password: string }): Promise<{ session: Session; states: FlowState[]; scannedBy: unknown }> {
    const browser = client(nodeA.url);
    const qr = await browser.qrLogin();
    expect(qr.qrPayload).toBe(`acme://login/${qr.id}`);
    const states: FlowState[] = [];
    qr.on('state', (s) => states.push(s));
    const sessionP = qr.session();
    const phone = client(nodeB.url, () => acmeToken(user));
    expect(await phone.connect({ timeout: 10_000 })).toBe('connected');
    const scan = await phone.scan(qr.id);
    await phone.confirm(qr.id);
    phone.disconnect();
    return { session: await sessionP, states, scannedBy: scan.state.scannedBy };
  }

  it("QR: the phone app confirms with its Acme token on node B; the browser's assertion becomes Acme's own session cookie", async () => {
    const { session, states, scannedBy } = await qrLogin(ACME_ANA);
    const ana = (await http(acme.url, 'GET', '/api/me', { headers: { authorization: `Bearer ${await acmeToken(ACME_ANA)}` } })).body;
    expect(scannedBy).toEqual({ userId: ana.id, displayName: 'Ana Lima', avatarUrl: null });
    expect(states.map((s) => s.state)).toEqual(expect.arrayContaining(['scanned', 'confirmed']));
    expect(session).toMatchObject({ tokenType: 'assertion', user: { id: ana.id, displayName: 'Ana Lima' } });

    const posted = await postAssertion(session.token);
    expect(posted).toMatchObject({ status: 200, body: { user: { id: ana.id, login: 'ana' } } });
    expect(posted.cookie).toMatch(/^acme_session=[\w-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    expect(await acmeMe(posted.cookie!)).toMatchObject({ status: 200, body: { id: ana.id, displayName: 'Ana Lima', via: 'session (handoff)' } });
  });

  it('Acme refuses an assertion posted a second time (one-time jti), and a forged one', async () => {
    const { session } = await qrLogin(ACME_BOB);
    expect((await postAssertion(session.token)).status).toBe(200);
    expect(await postAssertion(session.token)).toMatchObject({ status: 401, body: { error: { code: 'assertion_replayed' } }, cookie: null });
    const [h, p] = session.token.split('.');
    expect(await postAssertion(`${h}.${p}.${'A'.repeat(86)}`)).toMatchObject({ status: 401, body: { error: { code: 'assertion_invalid' } } });
  });

  it("async password login: Acme's credentials endpoint checks the password through the worker, and the assertion signs the browser in", async () => {
    const login = await client(nodeA.url).asyncLogin({ login: ACME_ANA.login, password: ACME_ANA.password });
    expect(login.queued).toBe(true);
    const states: string[] = [];
    login.on('state', (s) => states.push(s.state));
    const session = await login.session();
    expect(states).toContain('succeeded');
    expect(session).toMatchObject({ tokenType: 'assertion', user: { displayName: 'Ana Lima' } });
    const posted = await postAssertion(session.token);
    expect(posted.status).toBe(200);
    expect(await acmeMe(posted.cookie!)).toMatchObject({ status: 200, body: { login: 'ana', via: 'session (handoff)' } });
  });

  it('async password login with a wrong password ends failed with invalid_credentials', async () => {
    const login = await client(nodeA.url).asyncLogin({ login: ACME_BOB.login, password: 'not-bobs-password' });
    const err = await login.session().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HandoffError);
    expect(err).toMatchObject({ code: 'failed', state: { state: 'failed', error: { code: 'invalid_credentials' } } });
  });

  it('async password login while Acme is down ends failed with unavailable after the retries; Acme restarted on its database works again', async () => {
    const before = worker.output().length;
    await acme.stop();
    try {
      const login = await client(nodeA.url).asyncLogin({ login: ACME_ANA.login, password: ACME_ANA.password });
      const err = await login.session().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'failed', state: { state: 'failed', error: { code: 'unavailable' } } });
      const log = worker.output().slice(before);
      expect(log.match(/credentials check: no usable answer from the app/g)).toHaveLength(3); // the queue's three attempts
      expect(log).not.toContain(ACME_ANA.password);
    } finally {
      acme = await startAcmeProcess(setup.acmePort, setup.acmeEnv(nodeA.url));
    }
    // Same SQLite file: the users (and signing keys) survived the restart.
    const again = await client(nodeA.url).asyncLogin({ login: ACME_ANA.login, password: ACME_ANA.password });
    expect(await again.session()).toMatchObject({ tokenType: 'assertion', user: { displayName: 'Ana Lima' } });
  });

  /** Scan a fresh QR flow on `node` with an Acme token: the HTTP status Handoff answers. */
  async function scanStatus(node: ServerProcess, token: string): Promise<number> {
    const qr = (await http(nodeA.url, 'POST', '/v1/qr')).body;
    return (await http(node.url, 'POST', `/v1/qr/${qr.id}/scan`, { headers: { authorization: `Bearer ${token}` } })).status;
  }

  it("JWKS rotation at Acme while Handoff runs: the new key's tokens are accepted with no restart, the dropped key's refused once the cache age passed", async () => {
    const admin = { authorization: `Bearer ${setup.adminToken}` };
    const oldToken = await acmeToken(ACME_ANA);
    for (const node of [nodeA, nodeB]) expect(await scanStatus(node, oldToken)).toBe(200);

    const rotated = await http(acme.url, 'POST', '/admin/keys/rotate', { headers: admin });
    expect(rotated.body.keys).toHaveLength(2);
    const newToken = await acmeToken(ACME_ANA);
    expect(JSON.parse(Buffer.from(newToken.split('.')[0], 'base64url').toString()).kid).toBe(rotated.body.kid);
    // An unknown kid makes each node refetch Acme's JWKS, at most once per APP_JWKS_COOLDOWN_MS (1 s).
    for (const node of [nodeA, nodeB]) await expect.poll(() => scanStatus(node, newToken), { timeout: 10_000, interval: 250 }).toBe(200);
    for (const node of [nodeA, nodeB]) expect(await scanStatus(node, oldToken)).toBe(200); // both keys published

    const dropped = await http(acme.url, 'POST', '/admin/keys/drop-previous', { headers: admin });
    expect(dropped.body.keys).toEqual([rotated.body.kid]);
    // Cached keys are refetched once older than APP_JWKS_CACHE_MAX_AGE_MS (2 s): then the old key is gone.
    for (const node of [nodeA, nodeB]) await expect.poll(() => scanStatus(node, oldToken), { timeout: 10_000, interval: 250 }).toBe(401);
    for (const node of [nodeA, nodeB]) expect(await scanStatus(node, newToken)).toBe(200);
  });

  it("server API: Acme's backend creates the flow with the browser's address and a context, the phone app confirms through Acme's backend", async () => {
    const created = await http(acme.url, 'POST', '/api/handoff/qr', { headers: { 'user-agent': 'AcmeBrowser/1.0' } });
    expect(created).toMatchObject({ status: 201, body: { state: 'pending', watchToken: expect.any(String) } });
    const { id, topic, watchToken } = created.body;
    expect(created.body.qrPayload).toBe(`acme://login/${id}`);

    const phone = { authorization: `Bearer ${await acmeToken(ACME_BOB)}` };
    const scan = await http(acme.url, 'POST', `/api/handoff/qr/${id}/scan`, { headers: phone });
    expect(scan).toMatchObject({
      status: 200,
      body: { state: 'scanned', scannedBy: { displayName: 'Bob Stone' }, requester: { ip: '127.0.0.1', userAgent: 'AcmeBrowser/1.0' }, context: { app: 'Acme' } },
    });
    expect((await http(acme.url, 'POST', `/api/handoff/qr/${id}/confirm`, { headers: phone })).status).toBe(200);
    // Without Acme's token, Acme's backend acts for nobody.
    expect((await http(acme.url, 'POST', `/api/handoff/qr/${id}/cancel`)).status).toBe(401);

    // The browser follows the flow with its watch token on the other node and redeems there.
    const watch = { 'watch-token': watchToken };
    expect(await http(nodeB.url, 'GET', `/v1/flows/${topic}`, { headers: watch })).toMatchObject({ status: 200, body: { state: 'confirmed' } });
    const redeemed = await http(nodeB.url, 'POST', `/v1/flows/${topic}/session`, { headers: watch });
    expect(redeemed).toMatchObject({ status: 200, body: { tokenType: 'assertion', user: { displayName: 'Bob Stone' } } });
    const posted = await postAssertion(redeemed.body.token);
    expect(await acmeMe(posted.cookie!)).toMatchObject({ status: 200, body: { login: 'bob' } });
  });
});
