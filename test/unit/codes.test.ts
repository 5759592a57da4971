/** Verification codes, the pure parts: code generation, hashing and sealing, recipients, messages, senders. */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { CodeCrypto, generateCode, isCodeShaped } from '../../server/src/codes/code-crypto.js';
import { accountExistsMessage, codeMessage } from '../../server/src/codes/messages.js';
import { emailLocalPart, isValidEmail, normaliseRecipient } from '../../server/src/codes/recipients.js';
import {
  HttpSmsProvider,
  LogSender,
  RoutingSender,
  SmsSender,
  channelConfigured,
  createChannelSenders,
  type CodeSender,
  type OutgoingMessage,
} from '../../server/src/codes/senders.js';
import { loadConfig } from '../../server/src/config.js';
import { HandoffError } from '../../server/src/errors.js';

const SECRET = 'unit-secret-unit-secret-unit-secret-0123';

describe('codes', () => {
  it('are 6 decimal digits, leading zeros kept, and vary', () => {
    const codes = Array.from({ length: 2000 }, generateCode);
    for (const code of codes) expect(code).toMatch(/^[0-9]{6}$/);
    expect(new Set(codes).size).toBeGreaterThan(1990);
    // Leading zeros occur (about 10% of codes start with 0).
    expect(codes.some((c) => c.startsWith('0'))).toBe(true);
  });

  it('isCodeShaped accepts exactly 6 ASCII digits', () => {
    for (const ok of ['000000', '123456']) expect(isCodeShaped(ok)).toBe(true);
    for (const bad of ['12345', '1234567', '12345a', ' 123456', '١٢٣٤٥٦', 123456, null, undefined]) expect(isCodeShaped(bad), String(bad)).toBe(false);
  });
});

describe('CodeCrypto', () => {
  const c = new CodeCrypto(SECRET);
  const key = c.recordKey('register', 'email', 'ana@example.com');

  it('keys records by purpose, channel and a pseudonym of the recipient, never the address', () => {
    expect(key).toMatch(/^register:email:[A-Za-z0-9_-]{43}$/);
    expect(key).not.toContain('ana');
    expect(c.recordKey('login', 'email', 'ana@example.com')).not.toBe(key);
    expect(c.recordKey('register', 'email', 'bob@example.com')).not.toBe(key);
    expect(new CodeCrypto(SECRET).recordKey('register', 'email', 'ana@example.com')).toBe(key);
  });

  it('hashes with a key: bound to the record, the code and the server secret', () => {
    const h = c.hash(key, '123456');
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(c.hash(key, '123456')).toBe(h);
    expect(c.hash(key, '123457')).not.toBe(h);
    expect(c.hash(c.recordKey('login', 'email', 'ana@example.com'), '123456')).not.toBe(h);
    expect(new CodeCrypto(SECRET + 'x').hash(key, '123456')).not.toBe(h);
  });

  it('compares hashes in constant time, refusing anything malformed', () => {
    const h = c.hash(key, '123456');
    expect(CodeCrypto.matches(h, h)).toBe(true);
    expect(CodeCrypto.matches(c.hash(key, '000000'), h)).toBe(false);
    expect(CodeCrypto.matches('', h)).toBe(false);
    expect(CodeCrypto.matches(h.slice(0, 62), h)).toBe(false);
    expect(CodeCrypto.matches('', '')).toBe(false);
  });

  it('seals a code for resends: opens only for its record and generation, tampering fails', () => {
    const sealed = c.seal('012345', key, 'gen-1');
    expect(sealed).not.toContain('012345');
    expect(c.seal('012345', key, 'gen-1')).not.toBe(sealed); // fresh IV each time
    expect(c.open(sealed, key, 'gen-1')).toBe('012345');
    expect(() => c.open(sealed, key, 'gen-2')).toThrow();
    expect(() => c.open(sealed, c.recordKey('login', 'email', 'ana@example.com'), 'gen-1')).toThrow();
    expect(() => new CodeCrypto(SECRET + 'x').open(sealed, key, 'gen-1')).toThrow();
    const raw = Buffer.from(sealed, 'base64url');
    raw[raw.length - 1] ^= 1;
    expect(() => c.open(raw.toString('base64url'), key, 'gen-1')).toThrow();
    expect(() => c.open('short', key, 'gen-1')).toThrow();
  });
});

describe('recipients', () => {
  it('normalises emails (trim, lower case) and refuses malformed ones with bad_request', () => {
    expect(normaliseRecipient('email', '  Ana.Lima+tag@Example.COM ')).toBe('ana.lima+tag@example.com');
    for (const bad of ['', 'ana', 'ana@', '@example.com', 'ana@example', 'ana@@example.com', 'a b@example.com', 'ana@exa mple.com', '.ana@example.com', 'ana.@example.com', 'ana..lima@example.com', 'ana@-example.com', 'ana@example.c', '"ana"@example.com', 'ana@[127.0.0.1]', 'ána@example.com', `${'a'.repeat(65)}@example.com`, `a@${'b'.repeat(250)}.com`]) {
      expect(() => normaliseRecipient('email', bad), bad).toThrow(HandoffError);
    }
    try {
      normaliseRecipient('email', 'nope');
    } catch (err) {
      expect(err).toMatchObject({ code: 'bad_request', status: 400 });
    }
  });

  it('accepts ordinary addresses up to 254 characters', () => {
    for (const ok of ['a@b.co', 'ana.lima+x@mail.example.com', "o'brien@example.ie", 'x_y-z@sub-domain.example.org', 'ana@xn--bcher-kva.example']) {
      expect(isValidEmail(ok), ok).toBe(true);
    }
    const long = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.com`;
    expect(long.length).toBe(254);
    expect(isValidEmail(long)).toBe(true);
    expect(isValidEmail(long.replace('@', '@e'))).toBe(false);
  });

  it('normalises phone numbers to E.164 and refuses anything else', () => {
    expect(normaliseRecipient('sms', '+44 20 7946-0958')).toBe('+442079460958');
    expect(normaliseRecipient('sms', ' +1 (415) 555.0100 ')).toBe('+14155550100');
    for (const bad of ['', '07700900123', '+0447700900123', '+44', '+1234567', '+1234567890123456', '+44 7700 9001x3', 'ana@example.com']) {
      expect(() => normaliseRecipient('sms', bad), bad).toThrow(HandoffError);
    }
    expect(() => normaliseRecipient('email', '+447700900123')).toThrow(HandoffError);
  });

  it('emailLocalPart', () => {
    expect(emailLocalPart('ana.lima+x@example.com')).toBe('ana.lima+x');
  });
});

describe('messages', () => {
  it('carry the code and what is left of its window', () => {
    const register = codeMessage('email', 'ana@example.com', 'register', '012345', 599_000);
    expect(register).toMatchObject({ channel: 'email', to: 'ana@example.com', subject: 'Your Handoff sign-up code' });
    expect(register.text).toContain('012345');
    expect(register.text).toContain('10 minutes');
    expect(codeMessage('email', 'ana@example.com', 'login', '012345', 30_000).text).toMatch(/sign in.*1 minute /s);
    const sms = codeMessage('sms', '+447700900123', 'register', '012345', 120_000);
    expect(sms.text).toBe('Your Handoff code is 012345. It expires in 2 min. Never share it.');
  });

  it('the account-exists notice carries no code', () => {
    const notice = accountExistsMessage('ana@example.com');
    expect(notice.subject).toBe('You already have a Handoff account');
    expect(notice.text).not.toMatch(/\d{6}/);
  });
});

function capture(): { lines: () => string; log: ReturnType<typeof pino> } {
  let out = '';
  const stream = new Writable({ write: (chunk, _enc, cb) => ((out += chunk.toString()), cb()) });
  return { lines: () => out, log: pino({ level: 'info' }, stream) };
}

describe('senders', () => {
  const message: OutgoingMessage = { channel: 'email', to: 'ana@example.com', subject: 'Your Handoff sign-up code', text: 'Your Handoff code is: 012345' };

  it('the log sender prints the whole message at info (development only)', async () => {
    const { log, lines } = capture();
    await new LogSender(log).send(message);
    const line = JSON.parse(lines());
    expect(line.level).toBe(30);
    expect(line.msg).toContain('Your Handoff code is: 012345');
    expect(line.msg).toContain('SMTP_URL');
  });

  it('routes by channel and throws for a channel without a sender', async () => {
    const sent: OutgoingMessage[] = [];
    const email: CodeSender = { send: async (m) => void sent.push(m) };
    const router = new RoutingSender({ email, sms: null });
    await router.send(message);
    expect(sent).toEqual([message]);
    await expect(router.send({ ...message, channel: 'sms', to: '+447700900123' })).rejects.toThrow('no sender configured for sms');
  });

  it('the HTTP SMS provider POSTs {to, text} as JSON; 2xx is sent, anything else throws without the body', async () => {
    const received: Array<{ headers: IncomingMessage['headers']; body: unknown }> = [];
    const statuses = [204, 500];
    const srv = createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(data) });
        res.writeHead(statuses.shift() ?? 200).end('provider said: 012345');
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/sms`;
      const sender = new SmsSender(new HttpSmsProvider(url));
      await sender.send({ channel: 'sms', to: '+447700900123', subject: '', text: 'code 012345' });
      expect(received[0].headers['content-type']).toBe('application/json');
      expect(received[0].body).toEqual({ to: '+447700900123', text: 'code 012345' });
      const err = await sender.send({ channel: 'sms', to: '+447700900123', subject: '', text: 'code 012345' }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe('SMS provider answered HTTP 500');
    } finally {
      srv.close();
    }
  });

  it('an SMS provider answer whose body cannot be released is logged at debug, without the number, text or URL; the send still counts', async () => {
    const body = new ReadableStream({
      cancel() {
        throw new Error('socket hang up');
      },
    });
    const fetchSpy = vi.spyOn(globalThis, 'fetch').mockResolvedValue(new Response(body, { status: 200 }));
    try {
      let out = '';
      const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _enc, cb) => ((out += chunk.toString()), cb()) }));
      await new SmsSender(new HttpSmsProvider('http://127.0.0.1:1/sms?key=provider-secret', 1000, log)).send({ channel: 'sms', to: '+447700900123', subject: '', text: 'code 012345' });
      const line = JSON.parse(out.trim());
      expect(line).toMatchObject({ level: 20, msg: 'SMS provider: the answer body could not be released', status: 200, err: 'socket hang up' });
      expect(out).not.toMatch(/447700900123|012345|provider-secret/);
    } finally {
      fetchSpy.mockRestore();
    }
  });

  it('picks senders from the config: URLs when set, the log sender in development, none in production', () => {
    const { log } = capture();
    const dev = loadConfig({});
    expect(createChannelSenders(dev, log)).toMatchObject({ email: expect.any(LogSender), sms: expect.any(LogSender) });
    expect(channelConfigured(dev, 'email')).toBe(true);
    const prodEnv = { NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(32) };
    const prod = loadConfig(prodEnv);
    expect(createChannelSenders(prod, log)).toEqual({ email: null, sms: null });
    expect(channelConfigured(prod, 'email')).toBe(false);
    expect(channelConfigured(prod, 'sms')).toBe(false);
    const configured = loadConfig({ ...prodEnv, SMTP_URL: 'smtp://127.0.0.1:2525', SMS_WEBHOOK_URL: 'https://sms.example/send' });
    const senders = createChannelSenders(configured, log);
    expect(senders.email?.constructor.name).toBe('SmtpSender');
    expect(senders.sms).toBeInstanceOf(SmsSender);
    expect(channelConfigured(configured, 'email') && channelConfigured(configured, 'sms')).toBe(true);
  });
});
