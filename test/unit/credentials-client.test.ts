/**
 * The credentials client (CREDENTIALS_URL) against real local HTTP servers standing in for the
 * app: the signed request (checked with the `standardwebhooks` package's own Webhook.verify), the
 * two answers that mean something, and every other answer or non-answer turned into `unavailable`,
 * with the password never in a log line or a thrown error.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../server/src/config.js';
import { HandoffError } from '../../server/src/errors.js';
import {
  CREDENTIALS_MAX_BODY_BYTES,
  CredentialsClient,
  credentialsOptionsFromEnv,
  type CredentialsOptions,
} from '../../server/src/identity/credentials-client.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const LOGIN = 'ana@acme.example';
/** Distinctive, so any leak is found by a plain substring search. */
const PASSWORD = 'pw-Zebra-7741-do-not-leak';

/** One request the stand-in app received: headers and the body exactly as sent. */
interface Received {
  headers: IncomingMessage['headers'];
  raw: string;
}

interface App {
  url: string;
  received: Received[];
  server: Server;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** A stand-in app on 127.0.0.1:0; `answer` gets each request once its body is read. */
async function startApp(answer: (req: IncomingMessage, res: ServerResponse, received: Received) => void): Promise<App> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      answer(req, res, r);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/credentials`, received, server };
}

/** Answer JSON with status 200 (or the one given). */
function json(body: unknown, status = 200) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
}

/** Every log line, parsed, and the whole text (to search for the password). */
class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  text = '';
  readonly stream = new Writable({
    write: (chunk, _enc, done) => {
      this.text += chunk.toString();
      for (const line of chunk.toString().split('\n').filter(Boolean)) this.lines.push(JSON.parse(line));
      done();
    },
  });
}

function clientFor(url: string, opts: Partial<CredentialsOptions> = {}) {
  const logs = new LogCapture();
  const client = new CredentialsClient({ url, secret: SECRET, timeoutMs: 5000, ...opts }, pino({ level: 'debug' }, logs.stream));
  return { client, logs };
}

/** The check fails with `unavailable` (503), and neither the error nor the logs hold the password. */
async function expectUnavailable(promise: Promise<unknown>, logs: LogCapture): Promise<HandoffError> {
  const err = await promise.then(
    () => expect.fail('the check should have thrown'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HandoffError);
  const error = err as HandoffError;
  expect(error.code).toBe('unavailable');
  expect(error.status).toBe(503);
  expect(error.cause).toBeUndefined();
  expect(inspect(error, { depth: null, showHidden: true })).not.toContain(PASSWORD);
  expect(JSON.stringify(error)).not.toContain(PASSWORD);
  expect(JSON.stringify(error.toBody())).not.toContain(PASSWORD);
  expect(String(error.stack)).not.toContain(PASSWORD);
  expect(logs.text).not.toContain(PASSWORD);
  expect(logs.lines.some((l) => l.level === 40 && l.msg === 'credentials check: no usable answer from the app')).toBe(true);
  return error;
}

/** The `reason` of the one warning logged. */
function reasonOf(logs: LogCapture): unknown {
  return logs.lines.find((l) => l.level === 40)?.reason;
}

describe('a password the app accepts', () => {
  it('returns the app user as a Principal', async () => {
    const app = await startApp(json({ ok: true, user: { id: 'u-42', displayName: 'Ana Lima', avatarUrl: 'https://cdn.acme.example/ana.png' } }));
    const { client, logs } = clientFor(app.url);
    await expect(client.check(LOGIN, PASSWORD)).resolves.toEqual({
      kind: 'app',
      id: 'u-42',
      displayName: 'Ana Lima',
      avatarUrl: 'https://cdn.acme.example/ana.png',
    });
    expect(logs.text).not.toContain(PASSWORD);
  });

  it('signs the request with Standard Webhooks headers that Webhook.verify accepts, over a body of exactly {login, password}', async () => {
    const app = await startApp(json({ ok: true, user: { id: 'u-42' } }));
    const { client } = clientFor(app.url);
    await client.check(LOGIN, PASSWORD);

    expect(app.received).toHaveLength(1);
    const { headers, raw } = app.received[0]!;
    expect(headers['content-type']).toBe('application/json');
    expect(headers['webhook-id']).toMatch(/^msg_[A-Za-z0-9_-]+$/);
    expect(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(new Webhook(SECRET).verify(raw, headers as Record<string, string>)).toEqual({ login: LOGIN, password: PASSWORD });
    expect(Object.keys(JSON.parse(raw))).toEqual(['login', 'password']);
    // The check means something: another secret does not verify.
    expect(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(raw, headers as Record<string, string>)).toThrow();
  });

  it('signs with a raw-string secret as the app reads it (its bytes, format raw)', async () => {
    const rawSecret = 'a raw credentials secret, 24+ bytes long';
    const app = await startApp(json({ ok: true, user: { id: 'u-42' } }));
    const client = new CredentialsClient({ url: app.url, secret: rawSecret, timeoutMs: 5000 });
    await client.check(LOGIN, PASSWORD);
    const { headers, raw } = app.received[0]!;
    expect(new Webhook(Buffer.from(rawSecret), { format: 'raw' }).verify(raw, headers as Record<string, string>)).toEqual({ login: LOGIN, password: PASSWORD });
  });

  it('gives each check its own webhook-id', async () => {
    const app = await startApp(json({ ok: true, user: { id: 'u-42' } }));
    const { client } = clientFor(app.url);
    await client.check(LOGIN, PASSWORD);
    await client.check(LOGIN, PASSWORD);
    expect(app.received[0]!.headers['webhook-id']).not.toBe(app.received[1]!.headers['webhook-id']);
  });

  it('uses the id as display name and no avatar when the app gives neither', async () => {
    const app = await startApp(json({ ok: true, user: { id: 'u-42' } }));
    const { client } = clientFor(app.url);
    await expect(client.check(LOGIN, PASSWORD)).resolves.toEqual({ kind: 'app', id: 'u-42', displayName: 'u-42', avatarUrl: null });
  });

  it.each([
    ['null', null],
    ['blank', '  '],
  ])('uses the id as display name when the app sends a %s one', async (_what, displayName) => {
    const app = await startApp(json({ ok: true, user: { id: 'u-42', displayName } }));
    const { client } = clientFor(app.url);
    await expect(client.check(LOGIN, PASSWORD)).resolves.toMatchObject({ displayName: 'u-42' });
  });

  it('accepts an id of 255 characters and a display name of 100', async () => {
    const user = { id: 'i'.repeat(255), displayName: 'n'.repeat(100) };
    const app = await startApp(json({ ok: true, user }));
    const { client } = clientFor(app.url);
    await expect(client.check(LOGIN, PASSWORD)).resolves.toMatchObject(user);
  });

  it.each([
    ['javascript:', 'javascript:alert(1)'],
    ['data:', 'data:image/png;base64,AAAA'],
    ['not a URL', 'ana.png'],
    ['a number', 42],
    ['over 2048 characters', `https://cdn.acme.example/${'a'.repeat(2048)}`],
  ])('drops an avatarUrl that is %s (null, the login still succeeds)', async (_what, avatarUrl) => {
    const app = await startApp(json({ ok: true, user: { id: 'u-42', avatarUrl } }));
    const { client } = clientFor(app.url);
    await expect(client.check(LOGIN, PASSWORD)).resolves.toEqual({ kind: 'app', id: 'u-42', displayName: 'u-42', avatarUrl: null });
  });
});

describe('a password the app refuses', () => {
  it('returns null for {"ok":false}', async () => {
    const app = await startApp(json({ ok: false }));
    const { client, logs } = clientFor(app.url);
    await expect(client.check(LOGIN, PASSWORD)).resolves.toBeNull();
    expect(logs.text).not.toContain(PASSWORD);
  });
});

describe('no usable answer: unavailable', () => {
  it('a 500 (whose body echoes the password) is unavailable, and the password reaches no log', async () => {
    const app = await startApp((_req, res, r) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`crashed while checking ${r.raw}`);
    });
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
    expect(reasonOf(logs)).toBe('HTTP 500');
  });

  it.each([401, 404, 201, 204])('a %i is unavailable', async (status) => {
    const app = await startApp(json({ ok: true, user: { id: 'u-42' } }, status));
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
  });

  it('a 200 that is not JSON is unavailable', async () => {
    const app = await startApp((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Welcome</h1>'));
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
    expect(reasonOf(logs)).toBe('answer is not JSON');
  });

  it('a 200 with an empty body is unavailable', async () => {
    const app = await startApp((_req, res) => res.writeHead(200).end());
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
  });

  it.each([
    ['an array', [{ ok: true }]],
    ['a string', 'ok'],
    ['null', null],
    ['no ok', { user: { id: 'u-42' } }],
    ['ok as a string', { ok: 'true', user: { id: 'u-42' } }],
    ['ok:true without a user', { ok: true }],
    ['a user that is a string', { ok: true, user: 'u-42' }],
    ['a user that is an array', { ok: true, user: ['u-42'] }],
    ['a user without id', { ok: true, user: { displayName: 'Ana' } }],
    ['an empty id', { ok: true, user: { id: '' } }],
    ['a numeric id', { ok: true, user: { id: 42 } }],
    ['an id of 256 characters', { ok: true, user: { id: 'i'.repeat(256) } }],
    ['a display name of 101 characters', { ok: true, user: { id: 'u-42', displayName: 'n'.repeat(101) } }],
    ['a display name that is not a string', { ok: true, user: { id: 'u-42', displayName: { first: 'Ana' } } }],
  ])('a 200 with %s is unavailable', async (_what, body) => {
    const app = await startApp(json(body));
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
  });

  it('a 10 MB body is not read to its end: the client gives up past 64 KiB and drops the connection', async () => {
    const TOTAL = 10 * 1024 * 1024;
    // Valid JSON if read to the end ({"ok":false,…}): only the byte cap makes this unavailable.
    const head = Buffer.from('{"ok":false,"pad":"');
    const tail = Buffer.from('"}');
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let written = 0;
    let closed!: Promise<{ written: number; finished: boolean }>;
    const app = await startApp((_req, res) => {
      closed = new Promise((resolve) => res.on('close', () => resolve({ written, finished: res.writableFinished })));
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length to refuse up front
      res.write(head);
      const pump = () => {
        while (!res.destroyed) {
          const left = TOTAL - written;
          if (left <= chunk.length + tail.length) return void res.end(Buffer.concat([chunk.subarray(0, left - tail.length), tail]));
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      pump();
    });
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
    expect(reasonOf(logs)).toBe(`answer over ${CREDENTIALS_MAX_BODY_BYTES} bytes`);
    const seen = await closed;
    expect(seen.finished).toBe(false);
    expect(seen.written).toBeLessThan(TOTAL);
  });

  it('a body declared over the cap by Content-Length is refused before it is read', async () => {
    let closed!: Promise<boolean>;
    const app = await startApp((_req, res) => {
      closed = new Promise((resolve) => res.on('close', () => resolve(res.writableFinished)));
      // Promise 10 MB, send 1 KiB, then hold: only a client that refuses up front returns now.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) });
      res.write(Buffer.alloc(1024, ' '));
    });
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
    expect(reasonOf(logs)).toBe(`answer of ${10 * 1024 * 1024} bytes, over ${CREDENTIALS_MAX_BODY_BYTES}`);
    await expect(closed).resolves.toBe(false);
  });

  it.each([301, 302, 303, 307, 308])('a %i redirect is not followed: its target is never asked', async (status) => {
    const target = await startApp(json({ ok: true, user: { id: 'attacker' } }));
    const app = await startApp((_req, res) => res.writeHead(status, { location: target.url }).end());
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
    expect(reasonOf(logs)).toBe(`HTTP ${status}`);
    expect(app.received).toHaveLength(1);
    expect(target.received).toHaveLength(0);
  });

  it('no answer within timeoutMs is unavailable, and the client hangs up', async () => {
    let hungUp!: Promise<void>;
    const app = await startApp((req) => {
      hungUp = new Promise((resolve) => req.socket.on('close', () => resolve()));
      // never answers
    });
    const { client, logs } = clientFor(app.url, { timeoutMs: 150 });
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
    expect(reasonOf(logs)).toBe('no answer within 150 ms');
    await hungUp;
  });

  it('a body that stalls after the headers is cut by the same timeout', async () => {
    const app = await startApp((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"ok":tr'); // and nothing more
    });
    const { client, logs } = clientFor(app.url, { timeoutMs: 150 });
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
    expect(reasonOf(logs)).toBe('no answer within 150 ms');
  });

  it('a refused connection is unavailable', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const { client, logs } = clientFor(`http://127.0.0.1:${port}/credentials`);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
    expect(reasonOf(logs)).toBe('ECONNREFUSED');
  });

  it('a connection dropped mid-answer is unavailable', async () => {
    const app = await startApp((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"ok":', () => res.socket?.destroy());
    });
    const { client, logs } = clientFor(app.url);
    await expectUnavailable(client.check(LOGIN, PASSWORD), logs);
  });
});

describe('credentialsOptionsFromEnv', () => {
  const URL_ = 'https://acme.example/internal/credentials';

  it('is null when CREDENTIALS_URL is unset or blank', () => {
    expect(credentialsOptionsFromEnv({})).toBeNull();
    expect(credentialsOptionsFromEnv({ CREDENTIALS_URL: '  ', CREDENTIALS_SECRET: SECRET })).toBeNull();
  });

  it('reads the URL, the secret and a 5000 ms default timeout', () => {
    expect(credentialsOptionsFromEnv({ CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: SECRET })).toEqual({ url: URL_, secret: SECRET, timeoutMs: 5000 });
  });

  it('reads CREDENTIALS_TIMEOUT_MS and a raw secret of 24 bytes', () => {
    const raw = 'r'.repeat(24);
    expect(credentialsOptionsFromEnv({ CREDENTIALS_URL: 'http://app:8080/check', CREDENTIALS_SECRET: raw, CREDENTIALS_TIMEOUT_MS: '250' })).toEqual({
      url: 'http://app:8080/check',
      secret: raw,
      timeoutMs: 250,
    });
  });

  it.each([
    ['CREDENTIALS_URL', 'not a url', { CREDENTIALS_URL: 'not a url', CREDENTIALS_SECRET: SECRET }],
    ['CREDENTIALS_URL', 'an ftp URL', { CREDENTIALS_URL: 'ftp://acme.example/creds', CREDENTIALS_SECRET: SECRET }],
    ['CREDENTIALS_URL', 'a URL with a password', { CREDENTIALS_URL: 'https://user:pass@acme.example/creds', CREDENTIALS_SECRET: SECRET }],
    ['CREDENTIALS_SECRET', 'no secret', { CREDENTIALS_URL: URL_ }],
    ['CREDENTIALS_SECRET', 'a blank secret', { CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: ' ' }],
    ['CREDENTIALS_SECRET', 'a raw secret of 23 bytes', { CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: 'r'.repeat(23) }],
    ['CREDENTIALS_SECRET', 'a whsec_ secret that is not base64', { CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: 'whsec_not*base64!' }],
    ['CREDENTIALS_SECRET', 'a whsec_ secret of 16 bytes', { CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: `whsec_${randomBytes(16).toString('base64')}` }],
    ['CREDENTIALS_TIMEOUT_MS', 'a timeout that is not a number', { CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: SECRET, CREDENTIALS_TIMEOUT_MS: '5s' }],
    ['CREDENTIALS_TIMEOUT_MS', 'a timeout of 99 ms', { CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: SECRET, CREDENTIALS_TIMEOUT_MS: '99' }],
    ['CREDENTIALS_TIMEOUT_MS', 'a timeout of 60001 ms', { CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: SECRET, CREDENTIALS_TIMEOUT_MS: '60001' }],
  ])('names %s for %s', (variable, _what, env) => {
    let thrown: unknown;
    try {
      credentialsOptionsFromEnv(env);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe(variable);
    expect((thrown as ConfigError).message).toMatch(new RegExp(`^${variable}: `));
  });

  it('never repeats the secret in its error', () => {
    const short = 'short-secret-value';
    expect(() => credentialsOptionsFromEnv({ CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: short })).toThrow(ConfigError);
    try {
      credentialsOptionsFromEnv({ CREDENTIALS_URL: URL_, CREDENTIALS_SECRET: short });
    } catch (err) {
      expect(inspect(err)).not.toContain(short);
    }
  });
});
