/**
 * POST /v1/users: the input rules (email format, password strength, display name, strict schema),
 * the code check (purpose-bound, once, even under a race), and `email_taken` answered only to
 * someone holding a valid code for that address. Embedded and Redis, in-process servers.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CodeService } from '../../server/src/codes/index.js';
import type { HandoffServer } from '../../server/src/server.js';
import { http } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, useRedisServer } from '../harness/in-process.js';
import { codeIn, startSmtp, type SmtpHandle } from '../harness/smtp-server.js';

const redis = useRedisServer();

const newEmail = (name: string) => `${name}-${randomBytes(4).toString('hex')}@example.com`;
const PASSWORD = 'correct horse battery';

describe.each(STORE_MODES)('registration ($name)', (mode) => {
  let smtp: SmtpHandle;
  let server: HandoffServer;
  let codes: CodeService;
  let base: string;

  beforeAll(async () => {
    smtp = await startSmtp();
    ({ server, base } = await startInProcess(testConfig(mode, redis, 'registration', { SMTP_URL: smtp.url })));
    codes = server.handoff.codes;
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.stop();
  });

  /** Ask a register code for `email` and read it from the mail. */
  async function registerCode(email: string): Promise<string> {
    const res = await http(base, 'POST', '/v1/verification-codes', { body: { channel: 'email', to: email, purpose: 'register' } });
    expect(res.status).toBe(202);
    return codeIn(await smtp.waitFor((m) => m.to.includes(email.toLowerCase())))!;
  }

  const register = (body: Record<string, unknown>) => http(base, 'POST', '/v1/users', { body });

  it('refuses weak passwords with 400 weak_password, without spending the code', async () => {
    const email = newEmail('ana.lima');
    const code = await registerCode(email);
    const local = email.split('@')[0];
    for (const password of ['short', '123456789', email, email.toUpperCase(), `${local.toUpperCase()}!!`, `my ${email} pw`]) {
      const res = await register({ email, password, code });
      expect(res, password).toMatchObject({ status: 400, body: { error: { code: 'weak_password' } } });
    }
    expect((await codes.inspect('register', 'email', email))!.attempts).toBe(0);
    expect((await register({ email, password: PASSWORD, code })).status).toBe(201);
  });

  it('strict schema and a sane email check: 400 bad_request', async () => {
    const cases: Array<[string, Record<string, unknown> | string]> = [
      ['email as a number', { email: 42, password: PASSWORD, code: '123456' }],
      ['code as a number', { email: 'a@example.com', password: PASSWORD, code: 123456 }],
      ['code too short', { email: 'a@example.com', password: PASSWORD, code: '12345' }],
      ['code not digits', { email: 'a@example.com', password: PASSWORD, code: '12345a' }],
      ['missing code', { email: 'a@example.com', password: PASSWORD }],
      ['missing password', { email: 'a@example.com', code: '123456' }],
      ['unknown field', { email: 'a@example.com', password: PASSWORD, code: '123456', admin: true }],
      ['displayName null', { email: 'a@example.com', password: PASSWORD, code: '123456', displayName: null }],
      ['displayName too long', { email: 'a@example.com', password: PASSWORD, code: '123456', displayName: 'x'.repeat(101) }],
      ['displayName control chars', { email: 'a@example.com', password: PASSWORD, code: '123456', displayName: 'Ana\u0000' }],
      ['not an email', { email: 'ana.example.com', password: PASSWORD, code: '123456' }],
      ['no TLD', { email: 'ana@example', password: PASSWORD, code: '123456' }],
      ['email too long', { email: `${'a'.repeat(64)}@${'b'.repeat(190)}.com`, password: PASSWORD, code: '123456' }],
      ['not an object', '"hello"'],
    ];
    for (const [name, body] of cases) {
      const res = typeof body === 'string' ? await http(base, 'POST', '/v1/users', { raw: body }) : await register(body);
      expect(res, name).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
    }
  });

  it('displayName: the local part by default (also for a blank one), trimmed, up to 100 characters', async () => {
    const plain = newEmail('Noa');
    const created = await register({ email: plain, password: PASSWORD, code: await registerCode(plain) });
    expect(created.body).toEqual({ id: expect.any(String), email: plain.toLowerCase(), displayName: plain.toLowerCase().split('@')[0] });

    const blank = newEmail('blank');
    expect((await register({ email: blank, password: PASSWORD, code: await registerCode(blank), displayName: '   ' })).body.displayName).toBe(blank.split('@')[0]);

    const named = newEmail('named');
    const long = ` ${'Ñ'.repeat(97)}🚀 `; // 100 characters (code points), trimmed to 98
    const res = await register({ email: named, password: PASSWORD, code: await registerCode(named), displayName: long });
    expect(res).toMatchObject({ status: 201, body: { displayName: long.trim() } });
    // The new account logs in with its password.
    const session = await http(base, 'POST', '/v1/sessions', { body: { email: named, password: PASSWORD } });
    expect(session).toMatchObject({ status: 200, body: { user: { displayName: long.trim() } } });
  });

  it('email_taken (409) only for someone holding a valid code; without one, 401 like any wrong code', async () => {
    const email = newEmail('race');
    const code = await registerCode(email);
    // The account appears by another path (CLI, seed) after the code was sent.
    await server.handoff.users.create({ email, password: PASSWORD, displayName: 'Other' });
    expect(await register({ email, password: PASSWORD, code })).toMatchObject({ status: 409, body: { error: { code: 'email_taken' } } });

    const existing = newEmail('existing');
    await server.handoff.users.create({ email: existing, password: PASSWORD, displayName: 'Existing' });
    expect(await register({ email: existing, password: PASSWORD, code: '000000' })).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
  });

  it('a code is bound to its purpose and address', async () => {
    const email = newEmail('bound');
    const code = await registerCode(email);
    await expect(server.handoff.codes.verifyLogin(email, code)).rejects.toMatchObject({ code: 'invalid_credentials' });
    expect(await register({ email: newEmail('someone-else'), password: PASSWORD, code })).toMatchObject({ status: 401 });
    expect((await register({ email, password: PASSWORD, code })).status).toBe(201);
  });

  it('two registrations racing with one code: one 201, one 401', async () => {
    const email = newEmail('twice');
    const code = await registerCode(email);
    const results = await Promise.all([1, 2].map(() => register({ email, password: PASSWORD, code })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 401]);
  });
});
