/**
 * The demo pages in a real browser (Debian's Chromium through playwright-core), as a person uses
 * them: the login page on node A and the phone page on node B of a two-node Redis cluster, each
 * page talking to its own node (so no cross-origin setup is needed: the flow crosses the nodes
 * through Redis). QR scan and confirm, cancel on either side, the password form, the HTTP
 * long-poll fallback with WebSockets blocked, and a phone-sized viewport.
 *
 * Screenshots of each state go to test-results/e2e/; UPDATE_SCREENSHOTS=1 also rewrites
 * docs/screenshots/signed-in.png (the README's picture).
 */
import { describe, expect, it } from 'vitest';
import { ANA } from '../harness/cluster.js';
import {
  HAS_CHROMIUM,
  PHONE,
  SKIP_REASON,
  openLoginPage,
  openPage,
  pasteAndScan,
  qrIdOf,
  qrLink,
  shot,
  signInOnPhone,
  updateDocsShot,
  useContexts,
  useDemoCluster,
  waitForFocus,
  waitForText,
} from './browser.js';

const EXPECTED_CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

if (!HAS_CHROMIUM) console.warn(`e2e: ${SKIP_REASON}`);

describe.skipIf(!HAS_CHROMIUM)('demo pages: login page on node A, phone page on node B (Redis, two nodes)', () => {
  const demo = useDemoCluster();
  const context = useContexts(() => demo.browser);

  it('scan and confirm: "Scanned by Ana" shows at once, then the page signs in without reloading', async () => {
    const { page, errors, csp, link } = await openLoginPage(await context(), demo.cluster.browser);
    expect(csp).toBe(EXPECTED_CSP);
    await waitForText(page, '#transport', 'Live: WebSocket');
    expect(link.startsWith(`${demo.cluster.browser}/app#qr=`)).toBe(true);
    expect(await page.locator('#qr-img').getAttribute('src')).toBe(`${demo.cluster.browser}/v1/qr/${qrIdOf(link)}/image.svg`);
    await page.locator('#qr-img').evaluate((img: HTMLImageElement) => img.decode()); // the QR code did load
    await waitForText(page, '#countdown', /^Expires in [12]:\d\d$/);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42)); // gone if the page reloads
    await shot(page, 'login-pending');

    const phone = await openPage(await context(PHONE), `${demo.cluster.phone}/app`);
    await waitForFocus(phone.page, 'app-email');
    await shot(phone.page, 'phone-signin');
    await signInOnPhone(phone.page, ANA);
    await waitForText(phone.page, '#who-name', 'Ana');
    await pasteAndScan(phone.page, link);
    await waitForText(phone.page, '#confirm-title', /^Sign in on Headless Chrome \d+ \(Linux\) from 127\.0\.0\.1\?$/);
    await shot(phone.page, 'phone-confirm');

    await waitForText(page, '#status-title', 'Scanned by Ana — confirm on your phone');
    expect(await page.locator('#qr-avatar').textContent()).toBe('A');
    expect(await page.locator('#qr-box').getAttribute('data-state')).toBe('scanned');
    await shot(page, 'login-scanned');

    await phone.page.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(page, '#signed-in-title', 'Signed in as Ana (ana@example.com)');
    await waitForFocus(page, 'signed-in-title');
    expect(await page.locator('#me-method').textContent()).toBe('Phone (QR code)');
    expect(await page.locator('#me-transport').textContent()).toBe('WebSocket');
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    updateDocsShot(await shot(page, 'login-signed-in'));

    await waitForText(phone.page, '#done-title', 'Done — you are signed in on the other screen');
    await waitForText(phone.page, '#done-detail', 'The browser has its session');
    await shot(phone.page, 'phone-done');
    expect(errors).toEqual([]);
    expect(phone.errors).toEqual([]);
  });

  it('opened from the QR link before signing in, the phone cancels: the login page says so and offers a new code', async () => {
    const { page, link } = await openLoginPage(await context(), demo.cluster.browser);
    // The QR link names node A; the phone app of this test lives on node B.
    const phone = await openPage(await context(PHONE), `${demo.cluster.phone}/app#qr=${qrIdOf(link)}`);
    await phone.page.locator('#signin-pending').waitFor();
    await signInOnPhone(phone.page, ANA);
    await waitForText(phone.page, '#confirm-title', /from 127\.0\.0\.1\?$/); // scanned straight after signing in
    await waitForText(page, '#status-title', 'Scanned by Ana');

    await phone.page.getByRole('button', { name: 'Cancel' }).click();
    await waitForText(phone.page, '#done-title', 'Declined');
    await waitForText(page, '#status-title', 'Cancelled on your phone');
    await waitForFocus(page, 'new-code');
    expect(await page.locator('#qr-link-wrap').isHidden()).toBe(true);
    await shot(page, 'login-cancelled');
    await shot(phone.page, 'phone-declined');

    await page.getByRole('button', { name: 'New code' }).click();
    await waitForText(page, '#status-title', 'Scan with the Handoff app');
    const fresh = await qrLink(page);
    expect(fresh).not.toBe(link);
    expect(await page.locator('#qr-img').getAttribute('src')).toContain(qrIdOf(fresh));
  });

  it('a cancel in the browser reaches the phone on its confirm screen; the next code, opened by link, completes', async () => {
    const { page, link } = await openLoginPage(await context(), demo.cluster.browser);
    const phone = await openPage(await context(PHONE), `${demo.cluster.phone}/app`);
    await signInOnPhone(phone.page, ANA);
    await pasteAndScan(phone.page, qrIdOf(link)); // the bare id works too
    await waitForText(page, '#status-title', 'Scanned by Ana');

    await page.getByRole('button', { name: 'Cancel this code' }).click();
    await waitForText(page, '#status-title', 'You cancelled');
    await waitForText(phone.page, '#done-title', 'Cancelled in the browser'); // pushed to the phone's watch
    await waitForFocus(phone.page, 'done-title');
    await shot(phone.page, 'phone-cancelled-in-browser');

    await page.getByRole('button', { name: 'New code' }).click();
    const next = await qrLink(page);
    expect(next).not.toBe(link);
    // Opening the link in the (signed-in) phone app scans it at once.
    await phone.page.goto(`${demo.cluster.phone}/app#qr=${qrIdOf(next)}`);
    await waitForText(phone.page, '#confirm-title', /from 127\.0\.0\.1\?$/);
    await waitForText(page, '#status-title', 'Scanned by Ana');
    await phone.page.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(page, '#signed-in-title', 'Signed in as Ana (ana@example.com)');
  });

  it('password form: errors inline with role="alert", then the signed-in view; sign out brings a fresh code', async () => {
    const { page, errors, link } = await openLoginPage(await context(), demo.cluster.browser);
    const alert = page.getByRole('alert');

    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(page, '#pw-error', 'Enter your email.');
    await waitForFocus(page, 'pw-email');

    await page.getByLabel('Email', { exact: true }).fill(ANA.email);
    await page.getByLabel('Password', { exact: true }).fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(page, '#pw-error', 'Wrong email or password.');
    expect(await alert.textContent()).toBe('Wrong email or password.');
    expect(await page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await waitForFocus(page, 'pw-password');
    await shot(page, 'login-password-error');

    await page.getByLabel('Password', { exact: true }).fill(ANA.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(page, '#signed-in-title', 'Signed in as Ana (ana@example.com)');
    expect(await page.locator('#me-method').textContent()).toBe('Password');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await waitForText(page, '#status-title', 'Scan with the Handoff app');
    expect(await qrLink(page)).not.toBe(link); // the old code was withdrawn on sign-in; this is a new one
    // The browser logs the wrong password's 401 answer; nothing else may be logged.
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  });

  it('with WebSockets blocked, the page says "HTTP long-poll fallback" and the same flow completes', async () => {
    const ctx = await context();
    let blocked = 0;
    // Every socket the page tries dies before its handshake completes, as behind a proxy that
    // drops upgrades: the connection to the server is closed the moment it is made.
    await ctx.routeWebSocket(/\/(socket\.io\/|v1\/ws\b)/, async (ws) => {
      blocked++;
      await ws.connectToServer().close();
    });
    const { page, link } = await openLoginPage(ctx, demo.cluster.browser);
    await waitForText(page, '#transport', 'Live: HTTP long-poll fallback');
    expect(await page.locator('#transport').getAttribute('data-transport')).toBe('fallback');
    expect(blocked).toBeGreaterThan(0);
    await shot(page, 'login-fallback');

    const phone = await openPage(await context(PHONE), `${demo.cluster.phone}/app`);
    await signInOnPhone(phone.page, ANA);
    await pasteAndScan(phone.page, link);
    await waitForText(page, '#status-title', 'Scanned by Ana — confirm on your phone');
    await phone.page.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(page, '#signed-in-title', 'Signed in as Ana (ana@example.com)');
    expect(await page.locator('#me-transport').textContent()).toBe('HTTP long-poll fallback');
    await shot(page, 'login-fallback-signed-in');
  });

  it('fits a 375×740 phone viewport: no sideways scrolling, every control labelled', async () => {
    const { page, errors } = await openLoginPage(await context(PHONE), demo.cluster.browser);
    const phone = await openPage(await context(PHONE), `${demo.cluster.phone}/app`);
    await phone.page.getByLabel('Email', { exact: true }).waitFor();
    for (const p of [page, phone.page]) {
      const [scrollWidth, clientWidth] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      expect(scrollWidth).toBeLessThanOrEqual(clientWidth);
      // Every visible input has a label, every button a name.
      const unlabelled = await p.evaluate(() =>
        [...document.querySelectorAll<HTMLInputElement | HTMLButtonElement>('input, button')]
          .filter((e) => e.offsetParent !== null)
          .filter((e) => (e instanceof HTMLInputElement ? e.labels?.length === 0 : !e.textContent?.trim()))
          .map((e) => e.id),
      );
      expect(unlabelled).toEqual([]);
    }
    const box = await page.locator('#qr-img').boundingBox();
    expect(box && box.x >= 0 && box.x + box.width <= 375).toBe(true);
    expect(await page.getByRole('status').first().getAttribute('aria-live')).toBe('polite');
    await shot(page, 'login-narrow', { fullPage: true });
    await shot(phone.page, 'phone-narrow');
    expect(errors).toEqual([]);
  });
});
