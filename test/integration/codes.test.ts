/**
 * Verification codes end to end, over HTTP, with a real SMTP server catching the mail: codes
 * register users and log them in, the resend window re-sends the same code, codes expire, burn
 * after 5 wrong attempts and work once, send limits hold per recipient and per IP, and nothing
 * tells an existing account from an unknown address. Embedded and Redis mode, in-process servers
 * (the tests read the code records through the service).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CodeService } from '../../server/src/codes/index.js';
import type { Config } from '../../server/src/config.js';
import { HandoffError } from '../../server/src/errors.js';
import { http } from '../harness/clients.js';
import { STORE_MODES, pollUntil, startInProcess, testConfig, useRedisServer, type InProcessServer, type StoreMode } from '../harness/in-process.js';
import { codeIn, startSmtp, type CapturedMail, type SmtpHandle } from '../harness/smtp-server.js';

const redis = useRedisServer();

interface Running extends InProcessServer {
  codes: CodeService;
}

async function startServer(mode: StoreMode, env: Record<string, string>, overrides: Partial<Config> = {}): Promise<Running> {
  // TRUST_PROXY: each test speaks from its own X-Forwarded-For address.
  const config = { ...testConfig(mode, redis, 'codes', { TRUST_PROXY: 'true', ...env }), ...overrides };
  const running = await startInProcess(config);
  return { ...running, codes: running.server.handoff.codes };
}

let ipCounter = 0;
/** Headers making the request come from a fresh client IP. */
function freshIp(): Record<string, string> {
  ipCounter++;
  return { 'x-forwarded-for': `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}` };
}

function newEmail(name: string): string {
  return `${name}-${randomBytes(4).toString('hex')}@example.com`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A code that is not `code`. */
function wrongFor(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, '0');
}

const PASSWORD = 'correct horse battery staple';

describe.each(STORE_MODES)('verification codes ($name)', (mode) => {
  let smtp: SmtpHandle;
  let app: Running;
  let shortLived: Running;
  let base: string;

  beforeAll(async () => {
    smtp = await startSmtp();
    app = await startServer(mode, { SMTP_URL: smtp.url, CODE_RESEND_SECONDS: '1' });
    // CODE_TTL_SECONDS cannot go under 10 through the environment; the config object can.
    shortLived = await startServer(mode, { SMTP_URL: smtp.url, CODE_RESEND_SECONDS: '1' }, { codeTtlSeconds: 2 });
    base = app.base;
  });
  afterAll(async () => {
    await app?.close();
    await shortLived?.close();
    await smtp?.stop();
  });

  const ask = (to: string, purpose: 'register' | 'login', headers: Record<string, string>, server = base) =>
    http(server, 'POST', '/v1/verification-codes', { body: { channel: 'email', to, purpose }, headers });

  /** The n-th (1-based) mail to `address`. */
  async function mail(address: string, n = 1): Promise<CapturedMail> {
    await smtp.waitFor(() => smtp.to(address).length >= n);
    return smtp.to(address)[n - 1];
  }

  it('an emailed code registers the user; a login code then logs her in, once', async () => {
    const ip = freshIp();
    const email = newEmail('zed');
    const asked = await ask(email.toUpperCase(), 'register', ip);
    expect(asked.status).toBe(202);
    expect(asked.body).toEqual({ expiresIn: 600, resendAfter: 1 });
    expect(asked.headers.get('cache-control')).toBe('no-store');

    const signup = await mail(email);
    expect(signup.subject).toBe('Your Handoff sign-up code');
    expect(signup.from).toBe('no-reply@localhost');
    const code = codeIn(signup)!;
    expect(code).toMatch(/^\d{6}$/);
    await pollUntil(() => app.codes.inspect('register', 'email', email), (r) => r?.delivery === 'sent');

    const created = await http(base, 'POST', '/v1/users', { body: { email: email.toUpperCase(), password: PASSWORD, code, displayName: 'Zed' }, headers: ip });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: expect.any(String), email, displayName: 'Zed' });
    expect(await app.codes.inspect('register', 'email', email)).toBeNull(); // used up
    // The same code again: refused before anything about the account is said.
    const again = await http(base, 'POST', '/v1/users', { body: { email, password: PASSWORD, code }, headers: ip });
    expect(again).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });

    // Login by code: POST /v1/sessions {email, code}, then the code is spent.
    expect((await ask(email, 'login', ip)).status).toBe(202);
    const signin = await mail(email, 2);
    expect(signin.subject).toBe('Your Handoff sign-in code');
    const loginCode = codeIn(signin)!;
    const session = await http(base, 'POST', '/v1/sessions', { body: { email, code: loginCode }, headers: ip });
    expect(session.status).toBe(200);
    expect(session.body.user).toMatchObject({ id: created.body.id, email, displayName: 'Zed' });
    const me = await http(base, 'GET', '/v1/me', { headers: { authorization: `Bearer ${session.body.token}` } });
    expect(me.body).toMatchObject({ id: created.body.id });
    const replay = await http(base, 'POST', '/v1/sessions', { body: { email, code: loginCode }, headers: ip });
    expect(replay).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
  });

  it('handoff.codes.verifyLogin: the user for a valid login code, invalid_credentials for everything else', async () => {
    const ip = freshIp();
    const email = newEmail('ver');
    const user = await app.server.handoff.users.create({ email, password: PASSWORD, displayName: 'Ver' });
    const loginCodes = app.server.handoff.codes;
    await ask(email, 'login', ip);
    const code = codeIn(await mail(email))!;
    const refusals = [
      () => loginCodes.verifyLogin(email, wrongFor(code)),
      () => loginCodes.verifyLogin(newEmail('nobody'), code),
      () => loginCodes.verifyLogin(email, 'abcdef'),
      () => loginCodes.verifyLogin('not an email', code),
      () => loginCodes.verifyLogin(42 as unknown as string, code),
    ];
    for (const refuse of refusals) await expect(refuse()).rejects.toMatchObject({ code: 'invalid_credentials' });
    expect(await loginCodes.verifyLogin(` ${email.toUpperCase()} `, code)).toMatchObject({ id: user.id, email });
    await expect(loginCodes.verifyLogin(email, code)).rejects.toMatchObject({ code: 'invalid_credentials' });
  });

  it('asking again within the resend window: 429 rate_limited with Retry-After; after it, the SAME code, expiring sooner', async () => {
    const ip = freshIp();
    const email = newEmail('again');
    const first = await ask(email, 'register', ip);
    expect(first.body.expiresIn).toBe(600);
    // At once, not after the mail: the 1 s window must not pass while the mail is on its way.
    const early = await ask(email, 'register', ip);
    const code = codeIn(await mail(email))!;
    expect(early).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
    const retryAfter = Number(early.headers.get('retry-after'));
    expect(retryAfter).toBe(1);

    await sleep(retryAfter * 1000);
    const resent = await ask(email, 'register', ip);
    expect(resent.status).toBe(202);
    expect(resent.body.expiresIn).toBeLessThan(600);
    expect(resent.body.resendAfter).toBe(1);
    expect(codeIn(await mail(email, 2))).toBe(code);
    expect(await app.codes.inspect('register', 'email', email)).toMatchObject({ sends: 2, attempts: 0 });
    expect((await http(base, 'POST', '/v1/users', { body: { email, password: PASSWORD, code }, headers: ip })).status).toBe(201);
  });

  it('a message the queue refuses: 503, the send is withdrawn, and the retry is not held back by the cooldown', async () => {
    // The job queue refuses exactly one add (as BullMQ's producer does while Redis is unreachable).
    const queue = (app.codes as unknown as { queue: { add: (...args: unknown[]) => Promise<string> } }).queue;
    const refuseOnce = () => {
      const add = queue.add;
      queue.add = async () => {
        queue.add = add;
        throw new HandoffError('unavailable', 'The codes queue did not answer within 2000 ms.');
      };
    };
    const ip = freshIp();
    const email = newEmail('refused');

    // A new code: withdrawn, so the retry creates one and it arrives.
    refuseOnce();
    expect(await ask(email, 'register', ip)).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
    expect(await app.codes.inspect('register', 'email', email)).toBeNull();
    expect((await ask(email, 'register', ip)).status).toBe(202);
    const code = codeIn(await mail(email))!;
    // The worker records `sent` after SMTP has taken the mail; a late `sent` would overwrite the
    // `failed` the refused re-send below writes, so let it land first.
    await pollUntil(() => app.codes.inspect('register', 'email', email), (r) => r?.delivery === 'sent');

    // A re-sent code: the send before is restored, so the retry re-sends the same code.
    await sleep(1000); // the resend window
    const before = (await app.codes.inspect('register', 'email', email))!;
    refuseOnce();
    expect((await ask(email, 'register', ip)).status).toBe(503);
    expect(await app.codes.inspect('register', 'email', email)).toMatchObject({ generation: before.generation, lastSentAt: before.lastSentAt, sends: 1, delivery: 'failed' });
    expect((await ask(email, 'register', ip)).status).toBe(202);
    expect(codeIn(await mail(email, 2))).toBe(code);
    expect(await app.codes.inspect('register', 'email', email)).toMatchObject({ sends: 2 });
  });

  it('five wrong codes burn it: then even the right one fails, and the next request sends a new code', async () => {
    const ip = freshIp();
    const email = newEmail('burn');
    await ask(email, 'register', ip);
    const code = codeIn(await mail(email))!;
    const before = await app.codes.inspect('register', 'email', email);
    for (let i = 1; i <= 5; i++) {
      const res = await http(base, 'POST', '/v1/users', { body: { email, password: PASSWORD, code: wrongFor(code) }, headers: ip });
      expect(res, `wrong attempt ${i}`).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
    }
    const right = await http(base, 'POST', '/v1/users', { body: { email, password: PASSWORD, code }, headers: ip });
    expect(right).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
    expect(await app.codes.inspect('register', 'email', email)).toMatchObject({ attempts: 5, sealed: null });

    await sleep(1000); // the resend window
    const fresh = await ask(email, 'register', ip);
    expect(fresh).toMatchObject({ status: 202, body: { expiresIn: 600 } }); // a new code, a full window
    const next = codeIn(await mail(email, 2))!;
    expect((await app.codes.inspect('register', 'email', email))!.generation).not.toBe(before!.generation);
    expect((await http(base, 'POST', '/v1/users', { body: { email, password: PASSWORD, code: next }, headers: ip })).status).toBe(201);
  });

  it('an expired code is refused; the next request sends a new one', async () => {
    const ip = freshIp();
    const email = newEmail('late');
    const asked = await ask(email, 'register', ip, shortLived.base);
    expect(asked.body).toEqual({ expiresIn: 2, resendAfter: 1 });
    const code = codeIn(await mail(email))!;
    const { expiresAt, generation } = (await shortLived.codes.inspect('register', 'email', email))!;
    await sleep(Math.max(0, expiresAt - Date.now() + 50)); // a bounded wait for the TTL itself
    const late = await http(shortLived.base, 'POST', '/v1/users', { body: { email, password: PASSWORD, code }, headers: ip });
    expect(late).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });

    expect((await ask(email, 'register', ip, shortLived.base)).body).toEqual({ expiresIn: 2, resendAfter: 1 });
    const next = codeIn(await mail(email, 2))!;
    expect((await shortLived.codes.inspect('register', 'email', email))!.generation).not.toBe(generation);
    expect((await http(shortLived.base, 'POST', '/v1/users', { body: { email, password: PASSWORD, code: next }, headers: ip })).status).toBe(201);
  });

  it('answers the same whether or not an account exists, and sends an existing account no code', async () => {
    const ip = freshIp();
    const existing = newEmail('known');
    await app.server.handoff.users.create({ email: existing, password: PASSWORD, displayName: 'Known' });
    const unknown = newEmail('unknown');
    const ghost = newEmail('ghost');

    // Each repeat follows its first ask at once: the resend window (1 s here) must not pass in
    // between on a busy machine. The resend window holds for unknown addresses exactly as for accounts.
    const answers = [];
    for (const [to, purpose, repeat] of [
      [existing, 'register', false],
      [unknown, 'register', true],
      [existing, 'login', true],
      [ghost, 'login', true],
    ] as const) {
      answers.push(await ask(to, purpose, ip));
      if (!repeat) continue;
      const early = await ask(to, purpose, ip);
      expect(early.status, `${purpose} ${to}`).toBe(429);
      expect(early.headers.get('retry-after')).toBe('1');
    }
    for (const a of answers) expect({ status: a.status, body: a.body }).toEqual({ status: 202, body: { expiresIn: 600, resendAfter: 1 } });

    // register + existing account: a notice, no code.
    // The worker sends several jobs at once, so the two mails to `existing` may arrive in either order.
    const toExisting = (subject: string) => smtp.waitFor((m) => m.to.includes(existing) && m.subject === subject);
    const notice = await toExisting('You already have a Handoff account');
    expect(codeIn(notice)).toBeUndefined();
    // register + unknown: the code. login + existing: the code. login + unknown: nothing at all.
    expect(codeIn(await mail(unknown))).toMatch(/^\d{6}$/);
    const loginCode = await toExisting('Your Handoff sign-in code');
    expect(codeIn(loginCode)).toMatch(/^\d{6}$/);
    expect(smtp.to(existing)).toHaveLength(2);
    await pollUntil(() => app.codes.inspect('login', 'email', ghost), (r) => r?.delivery === 'skipped');
    expect(smtp.to(ghost)).toEqual([]);
    // The worker records `sent` after SMTP has taken the mail, so the mail can be read first: wait for it.
    await pollUntil(() => app.codes.inspect('register', 'email', existing), (r) => r?.delivery === 'sent');

    // Registering an existing address without its code says nothing about the account.
    const taken = await http(base, 'POST', '/v1/users', { body: { email: existing, password: PASSWORD, code: '123456' }, headers: ip });
    expect(taken).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
  });

  it('limits sends per recipient (5 per hour, any purpose) and refuses the sixth with a long Retry-After', async () => {
    const ip = freshIp();
    const email = newEmail('limit');
    // Two purposes have separate resend windows but share the recipient's budget.
    for (let round = 1; round <= 2; round++) {
      expect((await ask(email, 'register', ip)).status, `register, round ${round}`).toBe(202);
      expect((await ask(email, 'login', ip)).status, `login, round ${round}`).toBe(202);
      await sleep(1000);
    }
    expect((await ask(email, 'register', ip)).status).toBe(202); // the fifth
    const sixth = await ask(email, 'login', ip);
    expect(sixth).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
    expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThan(60);
    // Another address from the same client is still served.
    expect((await ask(newEmail('other'), 'register', ip)).status).toBe(202);
  });

  it('limits requests per client IP (30 per 10 minutes)', async () => {
    const ip = freshIp();
    for (let i = 0; i < 30; i++) expect((await ask(newEmail(`ip${i}`), 'login', ip)).status, `request ${i + 1}`).toBe(202);
    const over = await ask(newEmail('ip30'), 'login', ip);
    expect(over).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await ask(newEmail('elsewhere'), 'login', freshIp())).status).toBe(202);
  });

  it('strict schema: wrong types, unknown fields and malformed addresses are 400 bad_request', async () => {
    const ip = freshIp();
    const cases: Array<[string, Parameters<typeof http>[3]]> = [
      ['unknown channel', { body: { channel: 'fax', to: 'a@example.com', purpose: 'login' } }],
      ['unknown purpose', { body: { channel: 'email', to: 'a@example.com', purpose: 'reset' } }],
      ['number as address', { body: { channel: 'email', to: 42, purpose: 'login' } }],
      ['missing purpose', { body: { channel: 'email', to: 'a@example.com' } }],
      ['unknown field', { body: { channel: 'email', to: 'a@example.com', purpose: 'login', code: '123456' } }],
      ['empty address', { body: { channel: 'email', to: '', purpose: 'login' } }],
      ['not an email', { body: { channel: 'email', to: 'not-an-email', purpose: 'login' } }],
      ['phone by email', { body: { channel: 'email', to: '+447700900123', purpose: 'login' } }],
      ['email by sms', { body: { channel: 'sms', to: 'a@example.com', purpose: 'register' } }],
      ['too long', { body: { channel: 'email', to: `${'a'.repeat(250)}@example.com`, purpose: 'login' } }],
      ['not an object', { raw: '"hello"' }],
      ['malformed JSON', { raw: '{"channel": ' }],
    ];
    for (const [name, opts] of cases) {
      const res = await http(base, 'POST', '/v1/verification-codes', { ...opts, headers: ip });
      expect(res, name).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
    }
  });

  it('counts requests and deliveries in /metrics', async () => {
    const text = (await http(base, 'GET', '/metrics')).body as string;
    expect(text).toMatch(/handoff_code_requests_total\{channel="email",purpose="register",outcome="created"\} \d+/);
    expect(text).toMatch(/handoff_code_deliveries_total\{channel="email",result="sent"\} \d+/);
    expect(text).toMatch(/handoff_code_verifications_total\{purpose="register",result="wrong"\} [1-9]\d*/);
  });
});
