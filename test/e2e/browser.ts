/**
 * Helpers for the browser tests of the demo pages: Debian's Chromium driven by playwright-core,
 * the SDK's browser bundle built when missing, screenshots, and page checks that wait on the DOM
 * (locator.waitFor / page.waitForFunction), never on the clock.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startCluster, type Cluster } from '../harness/cluster.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SKIP_REASON = `${CHROMIUM} is absent: the demo-page browser tests are skipped (apt-get install chromium; .ci/run installs it)`;

/** Screenshots of every state, for people to look at (gitignored). */
export const SHOTS_DIR = join(ROOT, 'test-results', 'e2e');
/** The screenshot the README shows: rewritten only with UPDATE_SCREENSHOTS=1 (or when missing). */
export const DOCS_SHOT = join(ROOT, 'docs', 'screenshots', 'signed-in.png');

const SDK_DIST = join(ROOT, 'client-sdk', 'dist');
const BUNDLE = join(SDK_DIST, 'handoff.iife.js');

/**
 * Build the SDK's browser bundle unless it is there (a fresh clone has no client-sdk/dist). It is
 * built into a private folder and renamed into place, so test files that build at once, or a
 * server that serves it meanwhile, never see half a file.
 */
export async function ensureSdkBundle(): Promise<void> {
  if (existsSync(BUNDLE) && existsSync(`${BUNDLE}.map`)) return;
  mkdirSync(SDK_DIST, { recursive: true });
  const tmp = join(SDK_DIST, `.e2e-build-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await promisify(execFile)(process.execPath, ['client-sdk/scripts/build.mjs', '--outdir', tmp], { cwd: ROOT });
    renameSync(join(tmp, 'handoff.iife.js.map'), `${BUNDLE}.map`);
    renameSync(join(tmp, 'handoff.iife.js'), BUNDLE);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One headless Chromium per test file. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export const DESKTOP: BrowserContextOptions = { viewport: { width: 1000, height: 700 } };
export const PHONE: BrowserContextOptions = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true };

/** A page whose console errors and uncaught exceptions (a CSP violation is one) are collected. */
export async function openPage(context: BrowserContext, url: string): Promise<{ page: Page; errors: string[]; csp: string | null }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  const res = await page.goto(url);
  return { page, errors, csp: res ? ((await res.allHeaders())['content-security-policy'] ?? null) : null };
}

/** Wait until the element `selector` is visible and its text matches. */
export async function waitForText(page: Page, selector: string, text: string | RegExp, timeout = 15_000): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ state: 'visible', timeout });
}

/** Wait until the element with id `id` has the focus. */
export async function waitForFocus(page: Page, id: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction((want) => document.activeElement?.id === want, id, { timeout });
}

/** Save a screenshot under test-results/e2e/<name>.png. */
export async function shot(page: Page, name: string, opts: { fullPage?: boolean } = {}): Promise<string> {
  mkdirSync(SHOTS_DIR, { recursive: true });
  const path = join(SHOTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: opts.fullPage ?? false, animations: 'disabled', caret: 'hide' });
  return path;
}

/** Copy a screenshot to docs/screenshots/signed-in.png when asked to (UPDATE_SCREENSHOTS=1) or when it is missing. */
export function updateDocsShot(path: string): void {
  if (process.env.UPDATE_SCREENSHOTS !== '1' && existsSync(DOCS_SHOT)) return;
  mkdirSync(join(ROOT, 'docs', 'screenshots'), { recursive: true });
  copyFileSync(path, DOCS_SHOT);
}

// ---- the demo pages, as a person uses them ------------------------------------------------

/** Open the login page and wait for its first live code; returns the page and the QR link. */
export async function openLoginPage(context: BrowserContext, base: string): Promise<{ page: Page; errors: string[]; csp: string | null; link: string }> {
  const opened = await openPage(context, `${base}/`);
  await waitForText(opened.page, '#status-title', 'Scan with the Handoff app');
  return { ...opened, link: await qrLink(opened.page) };
}

/** The QR link shown (and copyable) under the code. */
export async function qrLink(page: Page): Promise<string> {
  await page.locator('#qr-link').waitFor({ state: 'visible' });
  return page.locator('#qr-link').inputValue();
}

/** The QR id in a QR link. */
export function qrIdOf(link: string): string {
  const m = /#qr=([A-Za-z0-9_-]+)$/.exec(link);
  if (!m) throw new Error(`not a QR link: ${link}`);
  return m[1];
}

/** Fill the phone page's sign-in form (the page shows it). */
export async function signInOnPhone(page: Page, user: { email: string; password: string }): Promise<void> {
  await page.getByLabel('Email', { exact: true }).fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** On the phone page's scan screen: paste `text` (a QR link or id) and scan; waits for the confirm screen. */
export async function pasteAndScan(page: Page, text: string): Promise<void> {
  await page.getByLabel('Paste the QR link or id').fill(text);
  await page.getByRole('button', { name: 'Scan', exact: true }).click();
  await waitForText(page, '#confirm-title', /^Sign in on .+ from .+\?$/);
}

/**
 * The two-node Redis cluster and the Chromium the demo tests drive, started before the describe
 * block's tests (with the SDK bundle built) and stopped after them. `env` adds to the nodes' env.
 */
export function useDemoCluster(env: Record<string, string> = {}): { readonly cluster: Cluster; readonly browser: Browser } {
  let cluster: Cluster | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    [cluster, browser] = await Promise.all([startCluster({ name: 'redis, two nodes', redis: true, nodes: 2 }, env), launchChromium(), ensureSdkBundle()]);
  });
  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  });
  return {
    get cluster() {
      if (!cluster) throw new Error('the demo cluster is not started yet');
      return cluster;
    },
    get browser() {
      if (!browser) throw new Error('chromium is not started yet');
      return browser;
    },
  };
}

/**
 * Browser contexts that last one test: the function answers a new context of `browser()` (DESKTOP
 * unless told), and every context it opened is closed after each test. Call it in a describe block.
 */
export function useContexts(browser: () => Browser): (options?: BrowserContextOptions) => Promise<BrowserContext> {
  const contexts: BrowserContext[] = [];
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });
  return async (options = DESKTOP) => {
    const c = await browser().newContext(options);
    contexts.push(c);
    return c;
  };
}
