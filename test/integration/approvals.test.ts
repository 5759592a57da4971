/**
 * Push-to-approve (contract §9), in embedded and Redis mode, in-process, over real sockets: the
 * browser asks to sign in as a user, the user's phone (subscribed to `user:me` on Socket.IO or
 * /v1/ws) is pushed the request with three choices and approves with the right number, denies, or
 * is pushed the outcome; caps, limits, the unknown-login answer and bad input.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT, createLocalJWKSet, exportSPKI, generateKeyPair, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebhookReceiver, type WebhookReceiver } from '../harness/webhook-receiver.js';
import { WsClient, connectSocketIo, emitAck, http, recordSocketIo, type ClientSocket } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, useRedisServer, type InProcessServer } from '../harness/in-process.js';

const PASSWORD = 'correct horse battery staple';
const API_KEY = 'acme-backend-key-0123456789abcdefghijklmnop';

interface Created {
  id: string;
  topic: string;
  watchToken: string;
  state: string;
  version: number;
  expiresAt: string;
  number: number;
}

describe.each(STORE_MODES)('push-to-approve ($name)', (mode) => {
  const redis = useRedisServer();
  let app: InProcessServer;
  let base: string;
  const sockets: Array<{ close(): void }> = [];
  let seq = 0;

  beforeAll(async () => {
    app = await startInProcess(testConfig(mode, redis, 'approvals', { API_KEYS: `acme:${API_KEY}` }));
    base = app.base;
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await app?.close();
  });

  /** A fresh built-in user and a session token for their phone. */
  async function newUser(): Promise<{ email: string; token: string }> {
    const email = `ana-${mode.name}-${++seq}@example.com`;
    await app.server.handoff.users.create({ email, password: PASSWORD, displayName: `Ana ${seq}` });
    const res = await http(base, 'POST', '/v1/sessions', { body: { email, password: PASSWORD } });
    expect(res.status).toBe(200);
    return { email, token: res.body.token };
  }

  async function request(login: string, headers: Record<string, string> = {}): Promise<Created> {
    const res = await http(base, 'POST', '/v1/approvals', { body: { login }, headers: { 'user-agent': 'Chrome/140 (Linux)', ...headers } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  }

  /** The browser: a Socket.IO subscriber of the approval with its watch token. */
  async function browser(created: Created) {
    const socket = await connectSocketIo(base);
    sockets.push(socket);
    const states = recordSocketIo(socket);
    const ack = await emitAck(socket, 'subscribe', { topic: created.topic, watchToken: created.watchToken });
    expect(ack).toMatchObject({ ok: true, state: { topic: created.topic, state: 'pending' } });
    return states;
  }

  /** A phone on Socket.IO, subscribed to its user channel; resolves with its snapshot and pushes. */
  async function phoneSocketIo(token: string) {
    const socket: ClientSocket = await connectSocketIo(base, { token });
    sockets.push(socket);
    const pushes = recordSocketIo(socket);
    const ack = await emitAck(socket, 'subscribe', { topic: 'user:me' });
    expect(ack.ok, JSON.stringify(ack)).toBe(true);
    return { socket, pushes, snapshot: ack.state };
  }

  /** A phone on /v1/ws, subscribed to its user channel. */
  async function phoneWs(token: string) {
    const ws = await WsClient.connect(base, { authorization: `Bearer ${token}` });
    sockets.push(ws);
    const reply = await ws.request('subscribe', { topic: 'user:me' });
    expect(reply.ok, JSON.stringify(reply)).toBe(true);
    return { ws, pushes: ws.states, snapshot: reply.state };
  }

  const wrongChoice = (choices: number[], number: number) => choices.find((c) => c !== number)!;

  it('approve with the right number over Socket.IO: the browser is pushed approved and redeems a session', async () => {
    const { email, token } = await newUser();
    const phone = await phoneSocketIo(token);
    expect(phone.snapshot).toEqual({ topic: 'user:me', approvals: [] });
    const created = await request(email);
    expect(created).toMatchObject({ topic: `approval:${created.id}`, state: 'pending', version: 1 });
    expect(created.number).toBeGreaterThanOrEqual(10);
    expect(created.number).toBeLessThanOrEqual(99);
    const browserStates = await browser(created);

    const pushed = (await phone.pushes.waitFor((s) => s.id === created.id)) as any;
    expect(pushed).toMatchObject({ topic: 'user:me', kind: 'approval', id: created.id, state: 'pending', requester: { userAgent: 'Chrome/140 (Linux)' } });
    // Both on 127.0.0.1 here: the hint says so.
    expect(pushed.requester.nearby).toBe('same-ip');
    expect(pushed.choices).toHaveLength(3);
    expect(new Set(pushed.choices).size).toBe(3);
    expect(pushed.choices).toContain(created.number);
    expect(pushed).not.toHaveProperty('number');

    const ack = await emitAck(phone.socket, 'approval:approve', { id: created.id, number: created.number });
    expect(ack).toMatchObject({ ok: true, state: { state: 'approved', version: 2 } });
    await browserStates.waitForState('approved');
    await phone.pushes.waitFor((s) => s.id === created.id && s.state === 'approved');

    const session = await http(base, 'POST', `/v1/flows/${created.topic}/session`, { headers: { 'watch-token': created.watchToken } });
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({ tokenType: 'session', user: { email } });
    await browserStates.waitForState('redeemed');
  });

  it('a wrong number over HTTP denies the request and answers 403 wrong_number', async () => {
    const { email, token } = await newUser();
    const phone = await phoneWs(token);
    const created = await request(email);
    const browserStates = await browser(created);
    const pushed = (await phone.pushes.waitFor((s) => s.id === created.id)) as any;
    const res = await http(base, 'POST', `/v1/approvals/${created.id}/approve`, {
      headers: { authorization: `Bearer ${token}` },
      body: { number: wrongChoice(pushed.choices, created.number) },
    });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('wrong_number');
    await browserStates.waitForState('denied');
    await phone.pushes.waitFor((s) => s.id === created.id && s.state === 'denied');
    // Denied for good: the right number afterwards is refused.
    const late = await http(base, 'POST', `/v1/approvals/${created.id}/approve`, { headers: { authorization: `Bearer ${token}` }, body: { number: created.number } });
    expect(late.status).toBe(409);
  });

  it('deny over /v1/ws: the browser is pushed denied and cannot redeem', async () => {
    const { email, token } = await newUser();
    const phone = await phoneWs(token);
    const created = await request(email);
    const browserStates = await browser(created);
    await phone.pushes.waitFor((s) => s.id === created.id);
    const reply = await phone.ws.request('approval.deny', { id: created.id });
    expect(reply).toMatchObject({ ok: true, state: { state: 'denied' } });
    await browserStates.waitForState('denied');
    const session = await http(base, 'POST', `/v1/flows/${created.topic}/session`, { headers: { 'watch-token': created.watchToken } });
    expect(session.status).toBe(409);
  });

  it('the browser cancels with its watch token: the phone is pushed cancelled', async () => {
    const { email, token } = await newUser();
    const phone = await phoneSocketIo(token);
    const created = await request(email);
    await phone.pushes.waitFor((s) => s.id === created.id);
    const wrong = await http(base, 'DELETE', `/v1/approvals/${created.id}`, { headers: { 'watch-token': 'not-the-token' } });
    expect(wrong.status).toBe(403);
    const res = await http(base, 'DELETE', `/v1/approvals/${created.id}`, { headers: { 'watch-token': created.watchToken } });
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('cancelled');
    await phone.pushes.waitFor((s) => s.id === created.id && s.state === 'cancelled');
  });

  it('two phones of the same user: the first answer wins, the other is pushed the outcome', async () => {
    const { email, token } = await newUser();
    const first = await phoneSocketIo(token);
    const second = await phoneWs(token);
    const created = await request(email);
    await first.pushes.waitFor((s) => s.id === created.id);
    await second.pushes.waitFor((s) => s.id === created.id);
    const ack = await emitAck(first.socket, 'approval:approve', { id: created.id, number: created.number });
    expect(ack.ok).toBe(true);
    await second.pushes.waitFor((s) => s.id === created.id && s.state === 'approved');
    const late = await second.ws.request('approval.deny', { id: created.id });
    expect(late).toMatchObject({ ok: false, error: { code: 'invalid_transition' }, state: { state: 'approved' } });
  });

  it('a phone subscribing after the request was created gets it in its snapshot, with the choices and no number', async () => {
    const { email, token } = await newUser();
    const created = await request(email, { 'x-forwarded-for': '198.51.100.9' });
    const phone = await phoneSocketIo(token);
    expect(phone.snapshot.topic).toBe('user:me');
    expect(phone.snapshot.approvals).toHaveLength(1);
    const [shown] = phone.snapshot.approvals;
    expect(shown).toMatchObject({ id: created.id, kind: 'approval', state: 'pending', version: 1 });
    expect(shown.choices).toContain(created.number);
    expect(shown).not.toHaveProperty('number');
    // Both on 127.0.0.1 here: the hint says so.
    expect(shown.requester.nearby).toBe('same-ip');
    // Finished approvals leave the snapshot.
    await emitAck(phone.socket, 'approval:deny', { id: created.id });
    const again = await emitAck(phone.socket, 'subscribe', { topic: 'user:me' });
    expect(again.state.approvals).toEqual([]);
  });

  it('at most APPROVALS_PER_USER (3) pending per user: the 4th is 429, and a finished one frees a place', async () => {
    const { email, token } = await newUser();
    const made = [await request(email), await request(email), await request(email)];
    const fourth = await http(base, 'POST', '/v1/approvals', { body: { login: email } });
    expect(fourth.status).toBe(429);
    expect(fourth.body.error.code).toBe('rate_limited');
    expect(fourth.headers.get('retry-after')).toBeTruthy();
    const denied = await http(base, 'POST', `/v1/approvals/${made[0].id}/deny`, { headers: { authorization: `Bearer ${token}` } });
    expect(denied.status).toBe(200);
    await request(email);
  });

  it('an unknown login answers exactly as a known one: 201, the same fields and types', async () => {
    const { email } = await newUser();
    const known = await http(base, 'POST', '/v1/approvals', { body: { login: email } });
    const unknown = await http(base, 'POST', '/v1/approvals', { body: { login: `nobody-${mode.name}@example.com` } });
    expect(unknown.status).toBe(known.status);
    const shape = (b: Record<string, unknown>) => Object.fromEntries(Object.entries(b).map(([k, v]) => [k, typeof v]));
    expect(shape(unknown.body)).toEqual(shape(known.body));
    expect(unknown.body).toMatchObject({ state: 'pending', version: 1 });
    expect([...unknown.headers.keys()].sort()).toEqual([...known.headers.keys()].sort());
    // The unknown login is capped alike (no oracle in the 4th answer either).
    for (let i = 0; i < 2; i++) await http(base, 'POST', '/v1/approvals', { body: { login: `nobody-${mode.name}@example.com` } });
    const fourth = await http(base, 'POST', '/v1/approvals', { body: { login: `nobody-${mode.name}@example.com` } });
    expect(fourth.status).toBe(429);
  });

  it('another user cannot approve or deny: 404, as an unknown id', async () => {
    const { email } = await newUser();
    const other = await newUser();
    const created = await request(email);
    const res = await http(base, 'POST', `/v1/approvals/${created.id}/approve`, { headers: { authorization: `Bearer ${other.token}` }, body: { number: created.number } });
    expect(res.status).toBe(404);
  });

  it('the server API creates an approval for an app user, with requester and context', async () => {
    const res = await http(base, 'POST', '/v1/server/approvals', {
      headers: { 'x-api-key': API_KEY },
      body: { user: { id: 'acme-42', displayName: 'Ana at Acme' }, requester: { ip: '203.0.113.7', userAgent: 'Firefox/140' }, context: { orderId: 'A-1' } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ topic: `approval:${res.body.id}`, state: 'pending', number: expect.any(Number), watchToken: expect.any(String) });
    const noKey = await http(base, 'POST', '/v1/server/approvals', { body: { user: { id: 'acme-42' } } });
    expect(noKey.status).toBe(401);
  });

  it('refuses bad input on every new entry point with 400 (401 without a user)', async () => {
    const { email, token } = await newUser();
    const created = await request(email);
    const bearer = { authorization: `Bearer ${token}` };
    for (const body of [{}, { login: 42 }, { login: '' }, { login: 'a@b.c', extra: 1 }]) {
      expect((await http(base, 'POST', '/v1/approvals', { body })).status, JSON.stringify(body)).toBe(400);
    }
    for (const body of [{}, { number: '12' }, { number: 12.5 }, { number: 100 }, { number: -1 }]) {
      const res = await http(base, 'POST', `/v1/approvals/${created.id}/approve`, { headers: bearer, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await http(base, 'POST', `/v1/approvals/${created.id}/approve`, { body: { number: 12 } })).status).toBe(401);
    expect((await http(base, 'POST', `/v1/approvals/${created.id}/deny`)).status).toBe(401);
    expect((await http(base, 'POST', '/v1/approvals/short/deny', { headers: bearer })).status).toBe(404);
    for (const body of [{}, { user: {} }, { user: { id: 7 } }, { user: { id: 'x' }, context: 'no' }, { user: { id: 'x' }, requester: { ip: 'nope', userAgent: 'x' } }]) {
      const res = await http(base, 'POST', '/v1/server/approvals', { headers: { 'x-api-key': API_KEY }, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const anonymous = await connectSocketIo(base);
    sockets.push(anonymous);
    expect(await emitAck(anonymous, 'subscribe', { topic: 'user:me' })).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(await emitAck(anonymous, 'approval:approve', { id: created.id, number: created.number })).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    const phone = await phoneSocketIo(token);
    expect(await emitAck(phone.socket, 'approval:approve', { id: created.id })).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(await emitAck(phone.socket, 'approval:approve', { id: created.id, number: 'x' })).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    const ws = await phoneWs(token);
    expect(await ws.ws.request('approval.approve', { id: created.id })).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(await ws.ws.request('approval.deny', {})).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    // Still pending after all that.
    const state = await http(base, 'GET', `/v1/flows/${created.topic}`, { headers: { 'watch-token': created.watchToken } });
    expect(state.body.state).toBe('pending');
  });
});

describe.each(STORE_MODES)('push-to-approve expiry ($name)', (mode) => {
  const redis = useRedisServer();
  let app: InProcessServer;

  beforeAll(async () => {
    app = await startInProcess(testConfig(mode, redis, 'approvals-expiry', { APPROVAL_TTL_SECONDS: '1', EXPIRY_SWEEP_MS: '50' }));
  });
  afterAll(() => app?.close());

  it('an unanswered request expires: the browser and the phone are pushed expired', async () => {
    const email = `exp-${mode.name}@example.com`;
    await app.server.handoff.users.create({ email, password: PASSWORD, displayName: 'Exp' });
    const token = (await http(app.base, 'POST', '/v1/sessions', { body: { email, password: PASSWORD } })).body.token;
    const phone = await connectSocketIo(app.base, { token });
    const pushes = recordSocketIo(phone);
    await emitAck(phone, 'subscribe', { topic: 'user:me' });
    const created = (await http(app.base, 'POST', '/v1/approvals', { body: { login: email } })).body;
    const browser = await connectSocketIo(app.base);
    const states = recordSocketIo(browser);
    await emitAck(browser, 'subscribe', { topic: created.topic, watchToken: created.watchToken });
    await states.waitForState('expired', 5000);
    await pushes.waitFor((s) => s.id === created.id && s.state === 'expired', 5000);
    phone.close();
    browser.close();
  });
});

describe.each(STORE_MODES)('push-to-approve webhooks ($name)', (mode) => {
  const redis = useRedisServer();
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  let app: InProcessServer;
  let hooks: WebhookReceiver;

  beforeAll(async () => {
    hooks = await startWebhookReceiver({ secret });
    app = await startInProcess(testConfig(mode, redis, 'approvals-hooks', { WEBHOOK_URLS: hooks.url, WEBHOOK_SECRET: secret, WEBHOOK_BACKOFF_MS: '50' }));
  });
  afterAll(async () => {
    await app?.close();
    await hooks?.close();
  });

  it('raises approval.requested (no number) for a known login only, then approval.approved', async () => {
    const email = `hook-${mode.name}@example.com`;
    await app.server.handoff.users.create({ email, password: PASSWORD, displayName: 'Hook' });
    const token = (await http(app.base, 'POST', '/v1/sessions', { body: { email, password: PASSWORD } })).body.token;
    const unknown = (await http(app.base, 'POST', '/v1/approvals', { body: { login: `nobody-hook-${mode.name}@example.com` } })).body;
    const created = (await http(app.base, 'POST', '/v1/approvals', { body: { login: email }, headers: { 'user-agent': 'HookBrowser/1' } })).body;
    const requested = await hooks.waitForEvent('approval.requested', created.topic);
    expect(requested.event?.data).toMatchObject({ topic: created.topic, account: 'builtin', requester: { userAgent: 'HookBrowser/1' } });
    expect(requested.body).not.toContain('"number"');
    expect(requested.body).not.toContain('choices');
    const approved = await http(app.base, 'POST', `/v1/approvals/${created.id}/approve`, { headers: { authorization: `Bearer ${token}` }, body: { number: created.number } });
    expect(approved.status).toBe(200);
    await hooks.waitForEvent('approval.approved', created.topic);
    expect(hooks.of(unknown.topic)).toEqual([]);
  });
});

describe.each(STORE_MODES)('push-to-approve for an app user ($name)', (mode) => {
  const redis = useRedisServer();
  let app: InProcessServer;
  let appToken: (sub: string) => Promise<string>;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    appToken = (sub) =>
      new SignJWT({ name: `User ${sub}` }).setProtectedHeader({ alg: 'ES256' }).setIssuer('https://acme.test').setAudience('handoff').setSubject(sub).setExpirationTime('5m').sign(privateKey);
    app = await startInProcess(
      testConfig(mode, redis, 'approvals-app', {
        ACCOUNTS: 'app',
        APP_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
        APP_JWT_ISSUER: 'https://acme.test',
        APP_JWT_AUDIENCE: 'handoff',
        ASSERTION_AUDIENCE: 'acme-web',
        API_KEYS: `acme:${API_KEY}`,
      }),
    );
  });
  afterAll(() => app?.close());

  it('the app backend asks, the phone (app token, /v1/ws) approves, the browser redeems an assertion with amr approval', async () => {
    const phone = await WsClient.connect(app.base, { authorization: `Bearer ${await appToken('acme-7')}` });
    try {
      expect(await phone.request('subscribe', { topic: 'user:me' })).toMatchObject({ ok: true, state: { topic: 'user:me', approvals: [] } });
      const created = (
        await http(app.base, 'POST', '/v1/server/approvals', {
          headers: { 'x-api-key': API_KEY },
          body: { user: { id: 'acme-7', displayName: 'Seven' }, requester: { ip: '203.0.113.7', userAgent: 'Chrome/140' }, context: { orderId: 'A-7' } },
        })
      ).body;
      const pushed = (await phone.states.waitFor((s) => s.id === created.id)) as any;
      expect(pushed).toMatchObject({ topic: 'user:me', requester: { ip: '203.0.113.7', userAgent: 'Chrome/140', nearby: null }, context: { orderId: 'A-7' } });
      // Another app user sees nothing of it.
      const other = await http(app.base, 'POST', `/v1/approvals/${created.id}/deny`, { headers: { authorization: `Bearer ${await appToken('acme-8')}` } });
      expect(other.status).toBe(404);
      expect(await phone.request('approval.approve', { id: created.id, number: created.number })).toMatchObject({ ok: true, state: { state: 'approved' } });
      const session = await http(app.base, 'POST', `/v1/flows/${created.topic}/session`, { headers: { 'watch-token': created.watchToken } });
      expect(session.body).toMatchObject({ tokenType: 'assertion', user: { id: 'acme-7' } });
      const jwks = createLocalJWKSet(await (await fetch(`${app.base}/.well-known/jwks.json`)).json());
      const { payload } = await jwtVerify(session.body.token, jwks, { audience: 'acme-web' });
      expect(payload).toMatchObject({ sub: 'acme-7', amr: ['approval'], flow: created.topic });
    } finally {
      phone.close();
    }
  });
});
