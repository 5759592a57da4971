/**
 * How the demo pages are served (no browser): routes, content types, `Cache-Control: no-cache`,
 * the Content-Security-Policy, ETags, the allowlist of assets, a clear 503 while the SDK bundle is
 * not built, and `DEMO_PAGES` (default on; `false` turns the pages off; a bad value stops the server).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/src/config.js';
import { DEMO_CSP, PUBLIC_DIR, SDK_BUNDLE, demoPages } from '../../server/src/demo/index.js';
import { http } from '../harness/clients.js';
import { startServerProcess } from '../harness/server-process.js';
import { ensureSdkBundle } from './browser.js';

const CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async function serve(opts: Parameters<typeof demoPages>[1]): Promise<{ app: FastifyInstance; base: string }> {
  const app = Fastify();
  await app.register(demoPages, opts);
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, base };
}

describe('demo pages: serving', () => {
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    await ensureSdkBundle();
    ({ app, base } = await serve({ enabled: true }));
  });
  afterAll(() => app?.close());

  it.each([
    ['/', 'text/html; charset=utf-8', '<title>Sign in · Handoff demo</title>'],
    ['/app', 'text/html; charset=utf-8', '<title>Handoff app (demo phone)</title>'],
    ['/demo/login.js', 'text/javascript; charset=utf-8', 'qrLogin'],
    ['/demo/app.js', 'text/javascript; charset=utf-8', 'scan'],
    ['/demo/demo.css', 'text/css; charset=utf-8', ':root'],
    ['/demo/favicon.svg', 'image/svg+xml', '<svg'],
    ['/sdk/handoff.iife.js', 'text/javascript; charset=utf-8', 'Handoff'],
    ['/sdk/handoff.iife.js.map', 'application/json; charset=utf-8', '"mappings"'],
  ])('GET %s: %s, no-cache, the strict CSP', async (path, type, snippet) => {
    const res = await fetch(base + path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(type);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('content-security-policy')).toBe(CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toContain(snippet);
  });

  it('the CSP forbids inline code, and the pages have none: every script and style is a file of /demo or /sdk', () => {
    expect(DEMO_CSP).toBe(CSP);
    for (const page of ['index.html', 'app.html']) {
      const html = readFileSync(new URL(page, PUBLIC_DIR), 'utf8');
      expect(html, page).not.toMatch(/<style|\sstyle=|\son[a-z]+=|javascript:/i);
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length, page).toBeGreaterThan(0);
      for (const [, attrs, body] of scripts) {
        expect(attrs).toMatch(/src="\/(sdk|demo)\/[\w.-]+\.js"/);
        expect(body.trim()).toBe('');
      }
    }
  });

  it('every element the scripts look up by id is on its page', () => {
    for (const [page, script] of [
      ['index.html', 'login.js'],
      ['app.html', 'app.js'],
    ]) {
      const html = readFileSync(new URL(page, PUBLIC_DIR), 'utf8');
      const js = readFileSync(new URL(script, PUBLIC_DIR), 'utf8');
      const ids = new Set([...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
      const wanted = [...js.matchAll(/\$\('([^']+)'\)/g)].map((m) => m[1]);
      expect(wanted.length).toBeGreaterThan(10);
      expect(wanted.filter((id) => !ids.has(id)), `${script} → ${page}`).toEqual([]);
      // Text goes in with textContent; the scripts never build HTML from strings.
      expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await fetch(`${base}/demo/demo.css`);
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await fetch(`${base}/demo/demo.css`, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(again.headers.get('cache-control')).toBe('no-cache');
  });

  it.each(['/demo/nope.js', '/demo/..%2Fapp.js', '/demo/%2e%2e%2f%2e%2e%2fpackage.json', '/demo/.hidden', '/sdk/other.js'])(
    'GET %s: 404, nothing outside the allowlist',
    async (path) => {
      const res = await fetch(base + path);
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain('"name"');
    },
  );

  it('answers a clear 503 for the SDK bundle while it is not built', async () => {
    const missing = await serve({ enabled: true, sdkBundle: new URL('file:///nonexistent/handoff.iife.js') });
    try {
      const res = await fetch(`${missing.base}/sdk/handoff.iife.js`);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(await res.text()).toMatch(/has not been built[\s\S]*npm run build:sdk/);
      expect((await fetch(`${missing.base}/`)).status).toBe(200); // the page itself says so in the browser
    } finally {
      await missing.app.close();
    }
  });

  it('DEMO_PAGES: on when unset, off with false, and a bad value is a configuration error naming it', () => {
    const demoPagesEnabled = (env: Record<string, string>) => loadConfig(env).demoPages;
    expect(demoPagesEnabled({})).toBe(true);
    expect(demoPagesEnabled({ DEMO_PAGES: '' })).toBe(true);
    expect(demoPagesEnabled({ DEMO_PAGES: 'true' })).toBe(true);
    expect(demoPagesEnabled({ DEMO_PAGES: 'FALSE' })).toBe(false);
    expect(demoPagesEnabled({ DEMO_PAGES: '0' })).toBe(false);
    expect(() => demoPagesEnabled({ DEMO_PAGES: 'maybe' })).toThrow(ConfigError);
    expect(() => demoPagesEnabled({ DEMO_PAGES: 'maybe' })).toThrow(/^DEMO_PAGES: expected true or false/);
  });

  it('a real server: DEMO_PAGES=false leaves only the API; a bad value stops it (exit 78)', async () => {
    const bad = startServerProcess({ DEMO_PAGES: 'maybe' }).then(
      (p) => p.kill().then(() => 'it started'),
      (err: Error) => err.message,
    );
    // (On by default: the browser tests load the pages from real servers.)
    const off = await startServerProcess({ DEMO_PAGES: 'false' });
    try {
      expect((await http(off.url, 'GET', '/')).status).toBe(404);
      expect((await http(off.url, 'GET', '/sdk/handoff.iife.js')).status).toBe(404);
      expect((await http(off.url, 'POST', '/v1/qr')).status).toBe(201);
    } finally {
      await off.kill();
    }
    expect(await bad).toMatch(/exited \(78\)[\s\S]*invalid configuration: DEMO_PAGES: expected true or false/);
  });

  it('finds server/public and the SDK bundle from its own module, the same from src/ and dist/', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const want = { publicDir: `${root}server/public/`, sdk: `${root}client-sdk/dist/handoff.iife.js` };
    expect({ publicDir: fileURLToPath(PUBLIC_DIR), sdk: fileURLToPath(SDK_BUNDLE) }).toEqual(want);
    const compiled = `${root}server/dist/demo/demo-pages.js`;
    if (existsSync(compiled)) {
      const dist = (await import(compiled)) as { PUBLIC_DIR: URL; SDK_BUNDLE: URL };
      expect({ publicDir: fileURLToPath(dist.PUBLIC_DIR), sdk: fileURLToPath(dist.SDK_BUNDLE) }).toEqual(want);
    }
  });
});
