import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { verifyAssertion } from '@handoff/client-sdk/server';
import type { AcmeConfig } from './config.js';
import { AcmeDb, type AcmeUser } from './db.js';
import { AcmeTokens } from './tokens.js';

/*
 * Acme: an "existing app" with its own users, passwords, tokens and sessions, that puts Handoff
 * in front of its login page (docs/integration.md walks through it):
 *
 *   GET  /                        the login page (QR + password), its own origin, strict CSP
 *   POST /api/login               password → Acme token (what Acme's phone app signs in with)
 *   GET  /api/me                  the user of the session cookie or of a Bearer Acme token
 *   GET  /api/session             the page's view of /api/me: {user} or {user: null}
 *   POST /api/logout              end the session cookie
 *   POST /api/handoff/assertion   Handoff's assertion → verified → Acme's own session cookie
 *   POST /handoff/credentials     Handoff's CREDENTIALS_URL: checks a password against Acme's users
 *   GET  /.well-known/jwks.json   Acme's public keys (Handoff's APP_JWKS_URL)
 *   POST /api/handoff/qr          server API: Acme's backend creates the QR flow for the browser
 *   POST /api/handoff/qr/:id/:action   server API: the phone app acts through Acme's backend
 *   POST /admin/keys/rotate|drop-previous   key rotation (ACME_ADMIN_TOKEN)
 */

const PUBLIC_DIR = new URL('../public/', import.meta.url);
const SESSION_COOKIE = 'acme_session';
const MAX_BODY = 16 * 1024;

/** A running Acme. */
export interface Acme {
  server: Server;
  url: string;
  db: AcmeDb;
  tokens: AcmeTokens;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message = code,
  ) {
    super(message);
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void> | void;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

async function rawBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'too_large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A JSON object body; only `application/json`, so a cross-site HTML form can never post here. */
async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'json_only');
  try {
    const body: unknown = JSON.parse((await rawBody(req)).toString('utf8'));
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch (err) {
    if (err instanceof HttpError) throw err;
  }
  throw new HttpError(400, 'bad_request');
}

function str(body: Record<string, unknown>, field: string, max = 1024): string {
  const v = body[field];
  if (typeof v !== 'string' || v === '' || v.length > max) throw new HttpError(400, 'bad_request', `${field} must be a non-empty string`);
  return v;
}

function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

function bearer(req: IncomingMessage): string | null {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m ? m[1] : null;
}

/** Constant-time comparison of two secrets (through their SHA-256, so lengths leak nothing either). */
function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The Standard Webhooks verifier for Handoff's credentials requests (same secret format as Handoff). */
function credentialsVerifier(secret: string): Webhook {
  return new Webhook(secret.startsWith('whsec_') ? secret : Buffer.from(secret).toString('base64'));
}

/** Start Acme; resolves once it listens. */
export async function startAcme(config: AcmeConfig): Promise<Acme> {
  const db = new AcmeDb(config.dbPath);
  for (const u of config.seedUsers) {
    const exists = db.db.prepare('SELECT 1 FROM users WHERE login = ?').get(u.login);
    if (!exists) await db.addUser(u);
  }

  let url = '';
  // Tokens need the issuer, which defaults to the URL known once listening; set below.
  let tokens!: AcmeTokens;
  const handoffJwks = new URL('/.well-known/jwks.json', `${config.handoffInternalUrl}/`);
  const webhook = config.credentialsSecret ? credentialsVerifier(config.credentialsSecret) : null;
  const handoffOrigin = new URL(config.handoffUrl).origin;
  const handoffWs = handoffOrigin.replace(/^http/, 'ws');
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' ${handoffOrigin} data:`,
    `connect-src 'self' ${handoffOrigin} ${handoffWs}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
  const secure = () => url.startsWith('https:');

  /** The signed-in user: the session cookie (browser) or a Bearer Acme token (phone app). */
  async function currentUser(req: IncomingMessage): Promise<{ user: AcmeUser; via: string } | null> {
    const token = bearer(req);
    if (token) {
      const sub = await tokens.verify(token);
      const user = sub ? db.userById(sub) : null;
      return user ? { user, via: 'token' } : null;
    }
    const cookie = cookies(req)[SESSION_COOKIE];
    const session = cookie ? db.sessionUser(cookie) : null;
    return session ? { user: session.user, via: `session (${session.method})` } : null;
  }

  async function requireTokenUser(req: IncomingMessage): Promise<AcmeUser> {
    const token = bearer(req);
    const sub = token ? await tokens.verify(token) : null;
    const user = sub ? db.userById(sub) : null;
    if (!user) throw new HttpError(401, 'unauthorized');
    return user;
  }

  /** Call Handoff's server API with Acme's key (never logged, never sent to a browser). */
  async function handoffServerApi(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    if (!config.handoffApiKey) throw new HttpError(404, 'not_found');
    let res: Response;
    try {
      res = await fetch(new URL(path, `${config.handoffInternalUrl}/`), {
        method,
        headers: { 'x-api-key': config.handoffApiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
    } catch {
      throw new HttpError(503, 'unavailable', 'Handoff did not answer');
    }
    return { status: res.status, body: await res.json().catch(() => null) };
  }

  function startSession(res: ServerResponse, user: AcmeUser, method: string): void {
    const id = db.createSession(user.id, method, config.sessionTtlSeconds);
    const cookie = [`${SESSION_COOKIE}=${id}`, 'Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${config.sessionTtlSeconds}`, ...(secure() ? ['Secure'] : [])];
    res.setHeader('set-cookie', cookie.join('; '));
  }

  async function serveStatic(res: ServerResponse, file: URL, type: string, extra: Record<string, string> = {}): Promise<void> {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      return send(res, 404, { error: { code: 'not_found' } });
    }
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', ...extra });
    res.end(data);
  }

  // Where the SDK package keeps its browser bundle (in this repository: client-sdk/dist, built by `npm run build:sdk`).
  const sdkDist = new URL('./dist/', import.meta.resolve('@handoff/client-sdk/package.json'));

  const routes: Array<[string, RegExp, Handler]> = [
    [
      'GET',
      /^\/$/,
      async (_req, res) => {
        const html = (await readFile(new URL('index.html', PUBLIC_DIR), 'utf8')).replace('{{HANDOFF_URL}}', escapeHtml(config.handoffUrl));
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          'content-security-policy': csp,
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
        });
        res.end(html);
      },
    ],
    ['GET', /^\/acme\.js$/, (_q, res) => serveStatic(res, new URL('acme.js', PUBLIC_DIR), 'text/javascript; charset=utf-8')],
    ['GET', /^\/acme\.css$/, (_q, res) => serveStatic(res, new URL('acme.css', PUBLIC_DIR), 'text/css; charset=utf-8')],
    [
      'GET',
      /^\/sdk\/(handoff\.iife\.js(?:\.map)?)$/,
      // Handoff's browser SDK, served by Acme from the npm package (client-sdk/dist here), not
      // from Handoff's origin: Handoff serves it only with DEMO_PAGES (off in production), and a
      // script from one's own origin keeps the CSP at script-src 'self'.
      (_q, res, [file]) => serveStatic(res, new URL(file, sdkDist), file.endsWith('.map') ? 'application/json' : 'text/javascript; charset=utf-8'),
    ],
    ['GET', /^\/\.well-known\/jwks\.json$/, (_q, res) => send(res, 200, tokens.jwks(), { 'cache-control': 'public, max-age=60' })],
    ['GET', /^\/healthz$/, (_q, res) => send(res, 200, { ok: true })],
    [
      'POST',
      /^\/api\/login$/,
      async (req, res) => {
        const body = await jsonBody(req);
        const user = await db.checkPassword(str(body, 'login', 200), str(body, 'password', 1024));
        if (!user) throw new HttpError(401, 'invalid_credentials');
        send(res, 200, { ...(await tokens.sign(user)), user });
      },
    ],
    [
      'GET',
      /^\/api\/me$/,
      async (req, res) => {
        const me = await currentUser(req);
        if (!me) throw new HttpError(401, 'unauthorized');
        send(res, 200, { ...me.user, via: me.via });
      },
    ],
    [
      'GET',
      /^\/api\/session$/,
      // For Acme's own page: who is signed in, or null (200 either way, so a signed-out page logs no error).
      async (req, res) => {
        const me = await currentUser(req);
        send(res, 200, { user: me ? { ...me.user, via: me.via } : null });
      },
    ],
    [
      'POST',
      /^\/api\/logout$/,
      (req, res) => {
        const cookie = cookies(req)[SESSION_COOKIE];
        if (cookie) db.deleteSession(cookie);
        send(res, 200, { ok: true }, { 'set-cookie': `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0` });
      },
    ],
    [
      'POST',
      /^\/api\/handoff\/assertion$/,
      async (req, res) => {
        const assertion = str(await jsonBody(req), 'assertion', 8192);
        let sub: string;
        try {
          // The whole backend side of the integration: Handoff's signature (JWKS), iss, aud, exp, one-time jti.
          ({ sub } = await verifyAssertion(assertion, {
            jwksUrl: handoffJwks,
            issuer: config.assertionIssuer,
            audience: config.assertionAudience,
            seen: (jti, exp) => db.seen(`jti:${jti}`, exp),
          }));
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (code === 'invalid' || code === 'expired' || code === 'replayed') throw new HttpError(401, `assertion_${code}`);
          throw new HttpError(503, 'unavailable', 'Handoff\'s keys could not be fetched');
        }
        const user = db.userById(sub);
        if (!user) throw new HttpError(401, 'unknown_user');
        startSession(res, user, 'handoff');
        send(res, 200, { user });
      },
    ],
    [
      'POST',
      /^\/handoff\/credentials$/,
      async (req, res) => {
        if (!webhook) throw new HttpError(404, 'not_found');
        const raw = await rawBody(req);
        let body: { login?: unknown; password?: unknown };
        try {
          body = webhook.verify(raw, req.headers as Record<string, string>) as typeof body;
        } catch {
          throw new HttpError(401, 'bad_signature'); // not from Handoff, or stale: never check that password
        }
        // Each signed request counts once (the signature is valid 5 minutes).
        if (db.seen(`webhook:${String(req.headers['webhook-id'])}`, Math.floor(Date.now() / 1000) + 600)) throw new HttpError(409, 'replayed');
        const { login, password } = body;
        const user = typeof login === 'string' && typeof password === 'string' ? await db.checkPassword(login, password) : null;
        send(res, 200, user ? { ok: true, user: { id: user.id, displayName: user.displayName, avatarUrl: user.avatarUrl } } : { ok: false });
      },
    ],
    [
      'POST',
      /^\/api\/handoff\/qr$/,
      async (req, res) => {
        // The browser asks Acme, Acme asks Handoff: the flow carries the browser's real address and
        // user agent (shown on the phone) and what Acme wants the phone to show.
        const created = await handoffServerApi('POST', '/v1/server/qr', {
          requester: { ip: req.socket.remoteAddress ?? '', userAgent: String(req.headers['user-agent'] ?? '').slice(0, 512) },
          context: { app: 'Acme' },
        });
        send(res, created.status, created.body);
      },
    ],
    [
      'POST',
      /^\/api\/handoff\/qr\/([A-Za-z0-9_-]{1,64})\/(scan|confirm|cancel)$/,
      async (req, res, [id, action]) => {
        // The phone app, signed in with its Acme token, acts through Acme's backend.
        const user = await requireTokenUser(req);
        const answer = await handoffServerApi('POST', `/v1/server/qr/${id}/${action}`, {
          user: { id: user.id, displayName: user.displayName, ...(user.avatarUrl ? { avatarUrl: user.avatarUrl } : {}) },
        });
        send(res, answer.status, answer.body);
      },
    ],
    [
      'POST',
      /^\/admin\/keys\/(rotate|drop-previous)$/,
      async (req, res, [action]) => {
        if (!config.adminToken) throw new HttpError(404, 'not_found');
        if (!sameSecret(bearer(req) ?? '', config.adminToken)) throw new HttpError(401, 'unauthorized');
        if (action === 'rotate') send(res, 200, { kid: await tokens.rotate(), keys: tokens.jwks().keys.map((k) => k.kid) });
        else send(res, 200, { dropped: tokens.dropPrevious(), keys: tokens.jwks().keys.map((k) => k.kid) });
      },
    ],
  ];


  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    try {
      for (const [method, pattern, handler] of routes) {
        const m = pattern.exec(path);
        if (!m) continue;
        if (req.method !== method && !(method === 'GET' && req.method === 'HEAD')) continue;
        return await handler(req, res, m.slice(1));
      }
      throw new HttpError(404, 'not_found');
    } catch (err) {
      if (res.headersSent) return void res.destroy();
      if (err instanceof HttpError) return send(res, err.status, { error: { code: err.code, message: err.message } });
      console.error('acme: request failed', req.method, path, err);
      send(res, 500, { error: { code: 'internal' } });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  url = config.publicUrl ?? `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`;
  tokens = new AcmeTokens(db, { issuer: config.issuer ?? url, audience: config.tokenAudience, ttlSeconds: config.tokenTtlSeconds });
  await tokens.init();
  return {
    server,
    url,
    db,
    tokens,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      db.close();
    },
  };
}
