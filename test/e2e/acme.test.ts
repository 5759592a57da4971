/**
 * Acme's login page in a real browser (Debian's Chromium through playwright-core): the page on
 * Acme's own origin (http://localhost:<port>), Handoff on another (http://127.0.0.1:<port>, with
 * Acme in ALLOWED_ORIGINS), two Handoff nodes on one Redis (the second also runs the login worker).
 * Acme's phone app, a Node SDK client holding an Acme token, confirms the QR code on the other
 * node; the browser ends with Acme's own session cookie and shows the user from Acme's /api/me.
 * Screenshots go to test-results/e2e/acme-*.png.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Handoff } from '@handoff/client-sdk';
import { ACME_ANA, ACME_BOB, HAS_NODE_SQLITE, NO_SQLITE_REASON, acmeSetup, startAcmeProcess, type AcmeProcess, type AcmeSetup } from '../harness/acme.js';
import { http } from '../harness/clients.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';
import { DESKTOP, HAS_CHROMIUM, SKIP_REASON, ensureSdkBundle, launchChromium, openPage, shot, waitForText } from './browser.js';

if (!HAS_CHROMIUM) console.warn(`e2e: ${SKIP_REASON}`);
if (!HAS_NODE_SQLITE) console.warn(`e2e: ${NO_SQLITE_REASON}`);

describe.skipIf(!HAS_CHROMIUM || !HAS_NODE_SQLITE)("Acme's login page (its own origin) with Handoff on another origin", { timeout: 30_000 }, () => {
  let setup: AcmeSetup;
  let redis: RedisHandle;
  let nodes: ServerProcess[] = [];
  let acme: AcmeProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    [setup, redis, browser] = await Promise.all([acmeSetup({}, { host: 'localhost' }), startRedis(), launchChromium(), ensureSdkBundle()]);
    const env = { ...setup.handoffEnv, REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('acme-e2e') };
    // Node B also runs the login worker (ROLE=all): one process fewer than the cluster test, same paths.
    nodes = await Promise.all([startServerProcess({ ...env, ROLE: 'api' }), startServerProcess({ ...env, ROLE: 'all' })]);
    acme = await startAcmeProcess(setup.acmePort, setup.acmeEnv(nodes[0].url));
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([...nodes.map((n) => n.kill()), acme?.stop()]);
    await redis?.stop();
    setup?.cleanup();
  });

  const newContext = async () => {
    const c = await browser.newContext(DESKTOP);
    contexts.push(c);
    return c;
  };

  it("QR confirmed by Acme's phone app on the other node: the page ends signed in with Acme's own cookie", async () => {
    const context = await newContext();
    const { page, errors, csp } = await openPage(context, `${setup.acmeUrl}/`);
    expect(new URL(page.url()).origin).toBe(setup.acmeUrl);
    expect(setup.acmeUrl).not.toBe(new URL(nodes[0].url).origin);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain(`connect-src 'self' ${new URL(nodes[0].url).origin}`);
    await waitForText(page, '#qr-status', 'Scan with the Acme app');
    const id = await page.locator('#qr-img').getAttribute('data-flow-id');
    expect(await page.locator('#qr-link').textContent()).toBe(`acme://login/${id}`);
    expect(await page.locator('#qr-img').getAttribute('src')).toBe(`${nodes[0].url}/v1/qr/${id}/image.svg`);
    await page.locator('#qr-img').evaluate((img: HTMLImageElement) => img.decode()); // the QR code loaded from Handoff's origin
    await shot(page, 'acme-login');

    // Acme's phone app: signed in to Acme (its own token), on the other Handoff node.
    const acmeToken = async () => (await http(acme.url, 'POST', '/api/login', { body: { login: ACME_ANA.login, password: ACME_ANA.password } })).body.token as string;
    const phone = new Handoff({ url: nodes[1].url, token: acmeToken });
    try {
      await phone.scan(id!);
      await waitForText(page, '#qr-status', 'Scanned by Ana Lima — confirm on your phone');
      await shot(page, 'acme-scanned');
      await phone.confirm(id!);
    } finally {
      phone.close();
    }

    await waitForText(page, '#signed-in-title', 'Signed in as Ana Lima');
    expect(await page.locator('#me-detail').textContent()).toMatch(/^Acme user ana \(u_[\w-]+\), session \(handoff\)$/);
    const cookies = await context.cookies(setup.acmeUrl);
    expect(cookies).toEqual([expect.objectContaining({ name: 'acme_session', domain: 'localhost', httpOnly: true, sameSite: 'Lax' })]);
    // The cookie is Acme's: its /api/me answers for it, outside the page too.
    const me = await http(acme.url, 'GET', '/api/me', { headers: { cookie: `acme_session=${cookies[0].value}` } });
    expect(me).toMatchObject({ status: 200, body: { login: 'ana', displayName: 'Ana Lima' } });
    await shot(page, 'acme-signed-in');
    expect(errors).toEqual([]);
  });

  it("the password form: Acme's credentials endpoint checks it through Handoff's queue; a wrong one is said so, the right one signs in", async () => {
    const context = await newContext();
    const { page, errors } = await openPage(context, `${setup.acmeUrl}/`);
    await page.getByLabel('Login', { exact: true }).fill(ACME_BOB.login);
    await page.getByLabel('Password', { exact: true }).fill('not-bobs-password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await waitForText(page, '#password-status', 'Wrong login or password.');
    await shot(page, 'acme-wrong-password');
    await page.getByLabel('Password', { exact: true }).fill(ACME_BOB.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await waitForText(page, '#signed-in-title', 'Signed in as Bob Stone');
    expect(await context.cookies(setup.acmeUrl)).toEqual([expect.objectContaining({ name: 'acme_session', httpOnly: true })]);
    expect(errors).toEqual([]);
  });
  it("the server-API button: Acme's backend creates the flow, the phone app confirms through Acme's backend, the page signs in", async () => {
    const context = await newContext();
    const { page, errors } = await openPage(context, `${setup.acmeUrl}/`);
    await waitForText(page, '#qr-status', 'Scan with the Acme app');
    const first = await page.locator('#qr-img').getAttribute('data-flow-id');
    await page.getByRole('button', { name: 'Sign in with your phone (server API)' }).click();
    await page.waitForFunction((old) => { const id = document.getElementById('qr-img')?.dataset.flowId; return !!id && id !== old; }, first);
    const id = await page.locator('#qr-img').getAttribute('data-flow-id');
    const phone = { authorization: `Bearer ${(await http(acme.url, 'POST', '/api/login', { body: { login: ACME_BOB.login, password: ACME_BOB.password } })).body.token}` };
    const scan = await http(acme.url, 'POST', `/api/handoff/qr/${id}/scan`, { headers: phone });
    // The flow carries the browser's own user agent, passed on by Acme's backend, and Acme's context.
    expect(scan).toMatchObject({ status: 200, body: { requester: { userAgent: expect.stringContaining('HeadlessChrome') }, context: { app: 'Acme' } } });
    await waitForText(page, '#qr-status', 'Scanned by Bob Stone — confirm on your phone');
    expect((await http(acme.url, 'POST', `/api/handoff/qr/${id}/confirm`, { headers: phone })).status).toBe(200);
    await waitForText(page, '#signed-in-title', 'Signed in as Bob Stone');
    await shot(page, 'acme-server-api-signed-in');
    expect(errors).toEqual([]);
  });
});
