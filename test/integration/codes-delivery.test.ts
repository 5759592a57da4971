/**
 * How code messages leave: through the `codes` job queue with retries and backoff, over a real
 * SMTP server (one that refuses, then accepts; one that always refuses for now, 451; one that
 * refuses for good, 550, which is not retried), an HTTP SMS webhook (503 retried, 400 not),
 * and the development log sender; production without a sender answers 503. Embedded and Redis.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeService, startCodeWorker } from '../../server/src/codes/index.js';
import type { Config } from '../../server/src/config.js';
import { Metrics } from '../../server/src/observability/metrics.js';
import type { HandoffServer } from '../../server/src/server.js';
import { http } from '../harness/clients.js';
import { STORE_MODES, openCore, pollUntil, startInProcess, testConfig, useRedisServer, type StoreMode } from '../harness/in-process.js';
import { codeIn, startSmtp, type SmtpHandle } from '../harness/smtp-server.js';

const redis = useRedisServer();

function configFor(mode: StoreMode, env: Record<string, string> = {}): Config {
  return testConfig(mode, redis, 'code-delivery', { LOG_LEVEL: 'info', CODE_RESEND_SECONDS: '1', ...env });
}

/** A pino logger whose JSON lines the test can read. */
function capturedLogger(): { log: Logger; lines: () => Array<{ level: number; msg: string; [k: string]: unknown }>; text: () => string } {
  let out = '';
  const stream = new Writable({ write: (chunk, _enc, cb) => ((out += chunk.toString()), cb()) });
  return {
    log: pino({ level: 'info' }, stream),
    text: () => out,
    lines: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l)),
  };
}

const newEmail = (name: string) => `${name}-${randomBytes(4).toString('hex')}@example.com`;
const askEmailCode = (base: string, to: string, purpose = 'register') =>
  http(base, 'POST', '/v1/verification-codes', { body: { channel: 'email', to, purpose } });

describe.each(STORE_MODES)('code delivery ($name)', (mode) => {
  describe('over SMTP', () => {
    let flaky: SmtpHandle;
    let refusing: SmtpHandle;
    let rejecting: SmtpHandle;
    let app: { server: HandoffServer; base: string };

    beforeAll(async () => {
      // Refuses each recipient's first two attempts (451, temporary), then accepts.
      flaky = await startSmtp({ refuse: (_to, attempt) => (attempt <= 2 ? '451 try again later' : null) });
      refusing = await startSmtp({ refuse: () => '451 mailbox busy, try again later' });
      rejecting = await startSmtp({ refuse: () => '550 mailbox unavailable' });
      app = await startInProcess(configFor(mode, { SMTP_URL: `${flaky.url}?ignoreTLS=true` }));
    });
    afterAll(async () => {
      await app?.server.close();
      await flaky?.stop();
      await refusing?.stop();
      await rejecting?.stop();
    });

    /**
     * A code service of its own, with 3 fast attempts, sending through `smtp`, on the same backend
     * (and its own metrics registry and captured log). Asks one code; resolves once its delivery
     * reads `failed`, with what the checks need.
     */
    async function deliverThrough(smtp: SmtpHandle, name: string) {
      const capture = capturedLogger();
      const core = await openCore(configFor(mode, { SMTP_URL: smtp.url }), capture.log);
      try {
        const metrics = new Metrics();
        const codes = new CodeService({ ...core, metrics }, { delivery: { attempts: 3, backoffMs: 20 } });
        startCodeWorker(codes, core);
        const email = newEmail(name);
        expect(await codes.request({ channel: 'email', to: email, purpose: 'register' }, '10.0.0.1')).toEqual({ expiresIn: 600, resendAfter: 1 });
        const record = (await pollUntil(() => codes.inspect('register', 'email', email), (r) => r?.delivery === 'failed'))!;
        const notSent = (l: { level: number; msg: string }) => l.level === 40 && /^verification message not sent/.test(l.msg);
        const warned = await pollUntil(capture.lines, (ls) => ls.some(notSent));
        // Nothing is left to retry: the queue has no job waiting, running or delayed.
        await pollUntil(() => codes.queue.counts(), (c) => c.waiting + c.active + c.delayed === 0);
        const code = codes.crypto.open(record.sealed!, codes.crypto.recordKey('register', 'email', email), record.generation);
        const counter = await metrics.registry.getSingleMetricAsString('handoff_code_deliveries_total');
        return { email, code, counter, warning: warned.find(notSent)!, log: capture.text() };
      } finally {
        await core.backend.close();
        await core.users.close();
      }
    }

    it('a server that refuses the first two attempts still gets the code, once, after retries', async () => {
      const email = newEmail('flaky');
      expect((await askEmailCode(app.base, email)).status).toBe(202);
      const mail = await flaky.waitFor((m) => m.to.includes(email));
      expect(flaky.attempts.get(email)).toBe(3);
      const codes = app.server.handoff.codes;
      await pollUntil(() => codes.inspect('register', 'email', email), (r) => r?.delivery === 'sent');
      // Nothing else is on its way: the codes queue has no job left waiting, running or retrying.
      const queue = app.server.handoff.codes.queue;
      await pollUntil(() => queue.counts(), (c) => c.waiting + c.active + c.delayed === 0);
      expect(flaky.to(email)).toHaveLength(1);
      const created = await http(app.base, 'POST', '/v1/users', { body: { email, password: 'correct horse battery', code: codeIn(mail) } });
      expect(created.status).toBe(201);
    });

    it.each([
      { refusal: 'for now (451): every attempt is made', server: () => refusing, attempts: 3, msg: 'verification message not sent: every attempt failed', reply: /451/ },
      { refusal: 'for good (550): not retried', server: () => rejecting, attempts: 1, msg: 'verification message not sent: refused for good, not retried', reply: /550/ },
    ])('a send refused $refusal, then logged without the code, counted, and recorded as failed', async ({ server, attempts, msg, reply }) => {
      const smtp = server();
      const { email, code, counter, warning, log } = await deliverThrough(smtp, 'doomed');
      expect(smtp.attempts.get(email)).toBe(attempts);
      expect(smtp.messages).toEqual([]);
      expect(counter).toContain('handoff_code_deliveries_total{channel="email",result="failed"} 1');
      expect(warning).toMatchObject({ msg, channel: 'email', purpose: 'register', attempts, err: expect.stringMatching(reply) });
      expect(log).not.toMatch(new RegExp(`(?<!\\d)${code}(?!\\d)`));
      expect(log).not.toContain('Your Handoff code');
    });
  });

  describe('over the SMS webhook', () => {
    let hook: Server;
    const received: Array<{ to: string; text: string }> = [];
    /** Every POST's `to`, answered or refused. */
    const posted: string[] = [];
    let statuses: number[] = [];
    let app: { server: HandoffServer; base: string };

    beforeAll(async () => {
      hook = createServer((req, res) => {
        let data = '';
        req.on('data', (c) => (data += c));
        req.on('end', () => {
          const status = statuses.shift() ?? 204;
          posted.push(JSON.parse(data).to);
          if (status < 300) received.push(JSON.parse(data));
          res.writeHead(status).end();
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/sms`;
      app = await startInProcess(configFor(mode, { SMS_WEBHOOK_URL: url }));
    });
    afterAll(async () => {
      await app?.server.close();
      hook?.close();
    });

    it('POSTs {to, text}; a 503 is retried; the code in the SMS verifies once', async () => {
      statuses = [503];
      const phone = `+4477009${String(Math.floor(Math.random() * 1e5)).padStart(5, '0')}`;
      const spaced = `${phone.slice(0, 3)} ${phone.slice(3, 7)} ${phone.slice(7)}`;
      const res = await http(app.base, 'POST', '/v1/verification-codes', { body: { channel: 'sms', to: spaced, purpose: 'register' } });
      expect(res).toMatchObject({ status: 202, body: { expiresIn: 600, resendAfter: 1 } });
      const sms = (await pollUntil(() => received.filter((m) => m.to === phone), (l) => l.length > 0))[0];
      expect(sms.text).toMatch(/^Your Handoff code is \d{6}\. It expires in 10 min\. Never share it\.$/);
      const codes = app.server.handoff.codes;
      await pollUntil(() => codes.inspect('register', 'sms', phone), (r) => r?.delivery === 'sent');
      const code = /\d{6}/.exec(sms.text)![0];
      expect(await codes.verify('register', 'sms', spaced, code)).toBe(true);
      expect(await codes.verify('register', 'sms', phone, code)).toBe(false);
    });

    it('a 400 from the provider is not retried: one POST, delivery failed', async () => {
      statuses = [400, 204];
      try {
        const phone = `+4477009${String(Math.floor(Math.random() * 1e5)).padStart(5, '0')}`;
        const res = await http(app.base, 'POST', '/v1/verification-codes', { body: { channel: 'sms', to: phone, purpose: 'register' } });
        expect(res.status).toBe(202);
        const codes = app.server.handoff.codes;
        await pollUntil(() => codes.inspect('register', 'sms', phone), (r) => r?.delivery === 'failed');
        await pollUntil(() => codes.queue.counts(), (c) => c.waiting + c.active + c.delayed === 0);
        expect(posted.filter((to) => to === phone)).toHaveLength(1);
        expect(received.filter((m) => m.to === phone)).toEqual([]);
      } finally {
        statuses = [];
      }
    });

    it('sends nothing for a login by SMS (accounts have no phone numbers), answering 202 all the same', async () => {
      const phone = '+14155550123';
      const res = await http(app.base, 'POST', '/v1/verification-codes', { body: { channel: 'sms', to: phone, purpose: 'login' } });
      expect(res).toMatchObject({ status: 202, body: { expiresIn: 600, resendAfter: 1 } });
      const codes = app.server.handoff.codes;
      await pollUntil(() => codes.inspect('login', 'sms', phone), (r) => r?.delivery === 'skipped');
      expect(received.filter((m) => m.to === phone)).toEqual([]);
    });
  });
});

describe('without a configured sender', () => {
  it('development: the log sender prints the message, code included, at info', async () => {
    const capture = capturedLogger();
    const app = await startInProcess(configFor(STORE_MODES[0], { NODE_ENV: 'development' }), capture.log);
    try {
      const email = newEmail('dev');
      expect((await askEmailCode(app.base, email)).status).toBe(202);
      const lines = await pollUntil(capture.lines, (ls) => ls.some((l) => l.msg?.includes('Your Handoff code is')));
      const line = lines.find((l) => l.msg?.includes('Your Handoff code is'))!;
      expect(line).toMatchObject({ level: 30, channel: 'email', to: email });
      expect(line.msg).toContain('no SMTP_URL');
      const code = /Your Handoff code is: (\d{6})/.exec(line.msg)![1];
      const created = await http(app.base, 'POST', '/v1/users', { body: { email, password: 'correct horse battery', code } });
      expect(created.status).toBe(201);
    } finally {
      await app.server.close();
    }
  });

  it('production: the server starts, warns, and answers 503 unavailable for that channel', async () => {
    const capture = capturedLogger();
    const app = await startInProcess(configFor(STORE_MODES[0], { NODE_ENV: 'production' }), capture.log);
    try {
      for (const [channel, to] of [['email', 'ana@example.com'], ['sms', '+447700900123']]) {
        const res = await http(app.base, 'POST', '/v1/verification-codes', { body: { channel, to, purpose: 'register' } });
        expect(res, channel).toMatchObject({ status: 503, body: { error: { code: 'unavailable', message: `Verification codes by ${channel} are not configured on this server.` } } });
      }
      const warnings = capture.lines().filter((l) => l.level === 40).map((l) => l.msg);
      expect(warnings).toEqual(expect.arrayContaining([expect.stringContaining('SMTP_URL is not set'), expect.stringContaining('SMS_WEBHOOK_URL is not set')]));
      expect((await http(app.base, 'GET', '/healthz')).status).toBe(200);
    } finally {
      await app.server.close();
    }
  });
});
