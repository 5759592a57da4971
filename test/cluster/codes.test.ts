/**
 * Verification codes across real processes, on every mode (embedded, one Redis, two nodes on one
 * Redis, on Sentinel and on a Redis Cluster): a code asked on node A is sent by a queue worker
 * (any node's) through a real SMTP server, and verifies on node B, once; the resend window and a
 * burnt code hold across nodes (the code store is shared). Issue 15 asked for the whole cross-node
 * suite on every deployment.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODES, startCluster, type Cluster } from '../harness/cluster.js';
import { http } from '../harness/clients.js';
import { codeIn, startSmtp, type CapturedMail, type SmtpHandle } from '../harness/smtp-server.js';

const PASSWORD = 'correct horse battery staple';

describe.each(MODES)('verification codes across nodes ($name)', (mode) => {
  let smtp: SmtpHandle;
  let cluster: Cluster;
  let ip = 0;
  /** A fresh client address per call (TRUST_PROXY), so per-IP limits never interfere. */
  const fromIp = () => ({ 'x-forwarded-for': `10.9.${(++ip >> 8) & 255}.${ip & 255}` });

  beforeAll(async () => {
    smtp = await startSmtp();
    cluster = await startCluster(mode, { SMTP_URL: smtp.url, CODE_RESEND_SECONDS: '30', TRUST_PROXY: 'true' });
  });
  afterAll(async () => {
    await cluster?.stop();
    await smtp?.stop();
  });

  const ask = (server: string, to: string, purpose: 'register' | 'login') =>
    http(server, 'POST', '/v1/verification-codes', { body: { channel: 'email', to, purpose }, headers: fromIp() });

  async function mail(address: string, n = 1): Promise<CapturedMail> {
    await smtp.waitFor(() => smtp.to(address).length >= n);
    return smtp.to(address)[n - 1];
  }

  it('asked on A, mailed by a worker, registers on B once; a login code asked on B logs in on A', async () => {
    const email = `kim-${randomBytes(4).toString('hex')}@example.com`;
    expect((await ask(cluster.browser, email, 'register')).status).toBe(202);
    const code = codeIn(await mail(email))!;
    expect(code).toMatch(/^\d{6}$/);

    const created = await http(cluster.phone, 'POST', '/v1/users', { body: { email, password: PASSWORD, code, displayName: 'Kim' }, headers: fromIp() });
    expect(created.status).toBe(201);
    const again = await http(cluster.browser, 'POST', '/v1/users', { body: { email, password: PASSWORD, code }, headers: fromIp() });
    expect(again).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });

    expect((await ask(cluster.phone, email, 'login')).status).toBe(202);
    const loginCode = codeIn(await mail(email, 2))!;
    const session = await http(cluster.browser, 'POST', '/v1/sessions', { body: { email, code: loginCode }, headers: fromIp() });
    expect(session).toMatchObject({ status: 200, body: { user: { id: created.body.id, email } } });
    const replay = await http(cluster.phone, 'POST', '/v1/sessions', { body: { email, code: loginCode }, headers: fromIp() });
    expect(replay).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
  });

  it('the resend window and five wrong attempts hold across nodes', async () => {
    const email = `lee-${randomBytes(4).toString('hex')}@example.com`;
    expect((await ask(cluster.browser, email, 'register')).status).toBe(202);
    const code = codeIn(await mail(email))!;
    const early = await ask(cluster.phone, email, 'register');
    expect(early).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThan(0);

    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    for (let i = 0; i < 5; i++) {
      const server = i % 2 === 0 ? cluster.browser : cluster.phone;
      const res = await http(server, 'POST', '/v1/users', { body: { email, password: PASSWORD, code: wrong }, headers: fromIp() });
      expect(res.status).toBe(401);
    }
    const burnt = await http(cluster.phone, 'POST', '/v1/users', { body: { email, password: PASSWORD, code }, headers: fromIp() });
    expect(burnt).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
  });
});
