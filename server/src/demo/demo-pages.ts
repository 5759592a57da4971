/**
 * The demo pages (#6): `/` is a login page (live QR code, countdown, password form) and `/app` a
 * phone-sized page standing in for the mobile app. Both are static files from `server/public/`
 * plus the SDK's browser bundle, served at `/sdk/handoff.iife.js` from `client-sdk/dist/`.
 *
 * Every answer carries `Cache-Control: no-cache` (with an ETag, so a reload is a cheap 304) and a
 * strict Content-Security-Policy: the pages have no inline scripts or styles.
 *
 * On by default; `DEMO_PAGES=false` turns them off (the routes are then not registered at all).
 */
import { createHash } from 'node:crypto';
import { access, readFile, readdir } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The policy of every demo answer. Scripts, styles and images only from this origin (the QR code
 * is `/v1/qr/<id>/image.svg` here; `data:` for small inline icons), sockets to this origin, and
 * the page may not be framed (a login page in someone else's frame is a clickjacking target).
 */
export const DEMO_CSP = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data:",
  "style-src 'self'",
  "script-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

// This module sits 3 folders below the repository root both as server/src/demo/*.ts (sources,
// tsx and vitest) and as server/dist/demo/*.js (compiled), so the same relative URLs work from both.
/** `server/public/`: the pages, their scripts and styles. */
export const PUBLIC_DIR = new URL('../../public/', import.meta.url);
/** The SDK's browser bundle (global `Handoff`), written by `npm run build:sdk` / `npm start`. */
export const SDK_BUNDLE = new URL('../../../client-sdk/dist/handoff.iife.js', import.meta.url);

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** A file name the asset route may serve: one plain name, no path, a known extension. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;

export interface DemoPagesOptions {
  /** Serve the pages at all (`config.demoPages`: DEMO_PAGES, validated with the rest of the config). */
  enabled: boolean;
  /** Folder of the pages (default PUBLIC_DIR). */
  publicDir?: URL;
  /** The SDK bundle (default SDK_BUNDLE); its `.map` is served beside it. */
  sdkBundle?: URL;
}

const NOT_BUILT =
  'The Handoff SDK browser bundle (client-sdk/dist/handoff.iife.js) has not been built.\n' +
  'Run `npm run build:sdk` (or `npm start`, which builds everything), then reload.\n';

/** The demo pages plugin: `GET /`, `GET /app`, `GET /demo/<file>`, `GET /sdk/handoff.iife.js(.map)`. */
export const demoPages: FastifyPluginAsync<DemoPagesOptions> = async (app, opts) => {
  if (!opts.enabled) return;
  const publicDir = opts.publicDir ?? PUBLIC_DIR;
  const sdkBundle = opts.sdkBundle ?? SDK_BUNDLE;

  // The asset allowlist is the folder's listing at start: a request can only ever name one of these.
  const assets = new Set(
    (await readdir(publicDir)).filter((name) => SAFE_NAME.test(name) && CONTENT_TYPES[extname(name)] !== undefined),
  );
  for (const page of ['index.html', 'app.html']) {
    if (!assets.has(page)) throw new Error(`demo pages: ${fileURLToPath(new URL(page, publicDir))} is missing`);
  }
  if (!(await exists(sdkBundle))) {
    app.log.warn(`demo pages: ${fileURLToPath(sdkBundle)} is missing; run \`npm run build:sdk\` (the pages answer 503 for it until then)`);
  }

  const route = { schema: { hide: true } };
  app.get('/', route, (request, reply) => sendFile(request, reply, new URL('index.html', publicDir), 'index.html'));
  app.get('/app', route, (request, reply) => sendFile(request, reply, new URL('app.html', publicDir), 'app.html'));
  app.get<{ Params: { file: string } }>('/demo/:file', route, (request, reply) => {
    const name = request.params.file;
    if (!assets.has(name)) return notFound(reply, `No demo asset named "${name}".`);
    return sendFile(request, reply, new URL(name, publicDir), name);
  });
  app.get('/sdk/handoff.iife.js', route, (request, reply) => sendFile(request, reply, sdkBundle, 'handoff.iife.js', NOT_BUILT));
  app.get('/sdk/handoff.iife.js.map', route, (request, reply) =>
    sendFile(request, reply, new URL(`${sdkBundle.href}.map`), 'handoff.iife.js.map', NOT_BUILT),
  );
};

function demoHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('cache-control', 'no-cache')
    .header('content-security-policy', DEMO_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
}

function notFound(reply: FastifyReply, message: string): FastifyReply {
  return demoHeaders(reply).code(404).type('text/plain; charset=utf-8').send(`${message}\n`);
}

/**
 * Send one file (read on each request, so edits show on reload) with its content type, the demo
 * headers and a strong ETag; `If-None-Match` answers 304. A missing file answers `missing` as a
 * 503 (something that should exist was not built) or a plain 404.
 */
async function sendFile(request: FastifyRequest, reply: FastifyReply, file: URL, name: string, missing?: string): Promise<FastifyReply> {
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (missing) return demoHeaders(reply).code(503).type('text/plain; charset=utf-8').send(missing);
    return notFound(reply, `${name} is missing.`);
  }
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  demoHeaders(reply).header('etag', etag);
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  return reply.type(CONTENT_TYPES[extname(name)] ?? 'application/octet-stream').send(body);
}

async function exists(file: URL): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
