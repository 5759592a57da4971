/**
 * The HTTP edge answers from the error catalogue: what the router cannot route, what Node's parser
 * refuses (raw sockets), a client that hangs up mid-upload, a bad bearer beside a watch token,
 * schema failures named in words, and the per-IP limit on creating QR flows. In-process servers.
 */
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/src/config.js';
import { http } from '../harness/clients.js';
import { BOB, login } from '../harness/cluster.js';
import { STORE_MODES, startInProcess, testConfig, useRedisServer, type InProcessServer } from '../harness/in-process.js';

const redis = useRedisServer();
const EMBEDDED = STORE_MODES[0];

/** A pino logger at debug whose JSON lines a test can read and wait for. */
function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      for (const wake of waiters) wake();
      done();
    },
  });
  return {
    logger: pino({ level: 'debug' }, sink),
    lines,
    /** The first line matching `match`, as soon as it is written. */
    waitFor(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
      return new Promise((resolve) => {
        const check = () => {
          const hit = lines.find(match);
          if (!hit) return;
          waiters.delete(check);
          resolve(hit);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  /** The server closed its side (FIN). */
  serverEnded: boolean;
  /** The socket error the client saw (ECONNRESET, EPIPE…), or null for a clean close. */
  error: string | null;
}

/** Send `bytes` on a fresh TCP connection and read one HTTP answer until the connection closes. */
function rawExchange(base: string, bytes: string): Promise<RawAnswer> {
  const { port, hostname } = new URL(base);
  return new Promise((resolve) => {
    const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true });
    let text = '';
    let serverEnded = false;
    let error: string | null = null;
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('end', () => {
      serverEnded = true;
      socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => {
      const split = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...headerLines] = (split >= 0 ? text.slice(0, split) : '').split('\r\n');
      const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      let body: unknown = split >= 0 ? text.slice(split + 4) : undefined;
      try {
        body = JSON.parse(body as string);
      } catch {
        // not JSON: kept as text for the assertion to show
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body, serverEnded, error });
    });
    socket.write(bytes);
  });
}

/** GET /healthz through `agent`: the status and Connection header, or the error code. */
function agentGet(agent: Agent, base: string, headers: Record<string, string>): Promise<{ status?: number; connection?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request(`${base}/healthz`, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

const catalogueBody = (code: string) => ({ error: { code, message: expect.any(String) } });

describe('the HTTP edge answers from the catalogue (embedded)', () => {
  let server: InProcessServer;
  const log = capturedLog();

  beforeAll(async () => {
    server = await startInProcess(testConfig(EMBEDDED, redis, 'edge', { LOG_LEVEL: 'debug' }), log.logger);
    await server.server.handoff.users.create(BOB);
  });
  afterAll(() => server?.close());

  describe('what the router cannot route', () => {
    it('a path parameter over 100 characters is 400 bad_request, not Fastify’s 414 body', async () => {
      const res = await http(server.base, 'POST', `/v1/qr/${'a'.repeat(101)}/scan`);
      expect(res.status).toBe(400);
      expect(res.body).toEqual(catalogueBody('bad_request'));
      expect(res.headers.get('cache-control')).toBe('no-store');
    });

    it('a path that is not valid percent-encoding is 400 bad_request, not FST_ERR_BAD_URL', async () => {
      const res = await http(server.base, 'POST', '/v1/qr/%zz/scan');
      expect(res.status).toBe(400);
      expect(res.body).toEqual(catalogueBody('bad_request'));
      expect(res.headers.get('cache-control')).toBe('no-store');
    });
  });

  describe('what the HTTP parser refuses (raw sockets, and node:http keep-alive)', () => {
    it('bad framing: 400 with the catalogue body, no-store and Connection: close', async () => {
      const res = await rawExchange(server.base, 'NOT HTTP AT ALL\r\n\r\n');
      expect(res).toMatchObject({ status: 400, body: catalogueBody('bad_request'), serverEnded: true, error: null });
      expect(res.headers).toMatchObject({ connection: 'close', 'cache-control': 'no-store' });
    });

    it('headers over 16 KiB: 431 with the catalogue body, no-store and Connection: close', async () => {
      const res = await rawExchange(server.base, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
      expect(res).toMatchObject({ status: 431, body: catalogueBody('bad_request'), serverEnded: true, error: null });
      expect(res.headers).toMatchObject({ connection: 'close', 'cache-control': 'no-store' });
    });

    it('an Expect other than 100-continue: 417 with the catalogue body, no-store and Connection: close', async () => {
      const res = await rawExchange(server.base, 'POST /v1/qr HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n');
      expect(res).toMatchObject({ status: 417, body: catalogueBody('bad_request'), serverEnded: true, error: null });
      expect(res.headers).toMatchObject({ connection: 'close', 'cache-control': 'no-store' });
    });

    it('a keep-alive client whose request got a 431 sends its next one on a new connection: 200, not ECONNRESET', async () => {
      // node:http's keep-alive agent with one socket: the second request waits for the first one's connection.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const [refused, next] = await Promise.all([
          agentGet(agent, server.base, { 'x-big': 'a'.repeat(17 * 1024) }),
          agentGet(agent, server.base, {}),
        ]);
        expect(next).toMatchObject({ status: 200 });
        expect(refused).toMatchObject({ status: 431, connection: 'close' });
      } finally {
        agent.destroy();
      }
    });

    it('headers far over the limit (more than one read): one 431, then a clean close', async () => {
      // The parser reports again for every chunk that follows; the server answers once and drains the rest.
      const res = await rawExchange(server.base, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(256 * 1024)}\r\n\r\n`);
      expect(res).toMatchObject({ status: 431, body: catalogueBody('bad_request'), serverEnded: true, error: null });
    });
  });

  it('a client that aborts its upload mid-body is logged at debug as client aborted, not as a store outage', async () => {
    const socket = connect({ port: Number(new URL(server.base).port), host: '127.0.0.1' });
    const upload = 'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"email":';
    socket.write(upload, () => socket.destroy());
    const line = await log.waitFor((l) => l.msg === 'client aborted' || l.msg === 'store unavailable' || l.msg === 'request failed');
    expect(line).toMatchObject({ msg: 'client aborted', level: 20 });
    expect(log.lines.filter((l) => l.msg === 'store unavailable' || l.msg === 'request failed')).toEqual([]);
    const metrics = (await http(server.base, 'GET', '/metrics')).body as string;
    expect(metrics).not.toMatch(/handoff_http_requests_total\{method="POST",route="\/v1\/sessions",status="5\d\d"\}/);
  });

  describe('a bad bearer beside a valid watch token', () => {
    it('GET /v1/flows/{topic} with a valid Watch-Token and a garbage Authorization is 401 unauthorized', async () => {
      const qr = (await http(server.base, 'POST', '/v1/qr')).body as { topic: string; watchToken: string };
      const res = await http(server.base, 'GET', `/v1/flows/${qr.topic}`, {
        headers: { 'watch-token': qr.watchToken, authorization: 'Bearer expired.or.garbage' },
      });
      expect(res.status).toBe(401);
      expect(res.body).toEqual(catalogueBody('unauthorized'));
    });

    it('the watch token still decides beside a valid JWT of another user: 200', async () => {
      const qr = (await http(server.base, 'POST', '/v1/qr')).body as { topic: string; watchToken: string };
      const bob = await login(server.base, BOB);
      const res = await http(server.base, 'GET', `/v1/flows/${qr.topic}`, {
        headers: { 'watch-token': qr.watchToken, authorization: `Bearer ${bob}` },
      });
      expect(res).toMatchObject({ status: 200, body: { topic: qr.topic, state: 'pending' } });
    });
  });

  describe('schema failures name the field and what is wrong, in words', () => {
    it('{"email":"x"} to POST /v1/sessions: "password or code: required", no Ajv internals', async () => {
      const res = await http(server.base, 'POST', '/v1/sessions', { body: { email: 'x' } });
      expect(res).toMatchObject({ status: 400, body: { error: { code: 'bad_request', message: 'password or code: required' } } });
    });

    it('a wrong type, a missing field, an unknown value and a bad query each say which field and why', async () => {
      const cases: [string, string, unknown, string][] = [
        ['POST', '/v1/users', { email: 42, password: 'x', code: '123456' }, 'email: must be a string'],
        ['POST', '/v1/users', { email: 'x@example.com', code: '123456' }, 'password: required'],
        ['POST', '/v1/users', { email: 'x@example.com', password: 'p', code: '12' }, 'code: must be 6 digits'],
        ['POST', '/v1/verification-codes', { channel: 'fax', to: 'x', purpose: 'login' }, 'channel: must be one of "email", "sms"'],
        ['POST', '/v1/sessions', [], 'body: must be an object'],
        ['GET', '/v1/flows/qr:abc?after=soon', undefined, 'after: must be 1 to 9 digits'],
        ['GET', '/v1/flows/qr:abc?extra=1', undefined, 'extra: unknown property'],
      ];
      for (const [method, path, body, message] of cases) {
        const res = await http(server.base, method, path, { body, headers: { 'watch-token': 'w' } });
        expect(res, `${method} ${path} ${JSON.stringify(body)}`).toMatchObject({ status: 400, body: { error: { code: 'bad_request', message } } });
        expect(res.body.error.message).not.toMatch(/anyOf|schema|instancePath/);
      }
    });
  });

  it('QR_IP_PER_MINUTE must be a whole number of at least 0: a bad value names the variable', () => {
    expect(() => loadConfig({ QR_IP_PER_MINUTE: 'lots' })).toThrow(/^QR_IP_PER_MINUTE: /);
    expect(() => loadConfig({ QR_IP_PER_MINUTE: '-1' })).toThrow(/^QR_IP_PER_MINUTE: /);
    expect(loadConfig({}).qrIpPerMinute).toBe(60);
  });
});

describe.each(STORE_MODES)('POST /v1/qr per-IP limit ($name)', (mode) => {
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcess(testConfig(mode, redis, 'qr-limit', { QR_IP_PER_MINUTE: '3', TRUST_PROXY: 'true' }));
  });
  afterAll(() => server?.close());

  const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });

  it('the fourth QR flow in a minute from one IP is 429 rate_limited with Retry-After, and counted', async () => {
    for (let i = 0; i < 3; i++) expect((await http(server.base, 'POST', '/v1/qr', from('10.0.0.1'))).status).toBe(201);
    const refused = await http(server.base, 'POST', '/v1/qr', from('10.0.0.1'));
    expect(refused).toMatchObject({ status: 429, body: catalogueBody('rate_limited') });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another client IP is not affected.
    expect((await http(server.base, 'POST', '/v1/qr', from('10.0.0.2'))).status).toBe(201);
    const metrics = (await http(server.base, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/^handoff_rate_limited_total\{limit="qr-ip"\} 1$/m);
  });
});

describe('QR_IP_PER_MINUTE=0 (embedded)', () => {
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcess(testConfig(EMBEDDED, redis, 'qr-nolimit', { QR_IP_PER_MINUTE: '0' }));
  });
  afterAll(() => server?.close());

  it('turns the limit off: 61 QR flows in a row from one IP are all created', async () => {
    const statuses = [];
    for (let i = 0; i < 61; i++) statuses.push((await http(server.base, 'POST', '/v1/qr')).status);
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
  });
});
