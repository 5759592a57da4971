/**
 * Push-to-approve on the demo pages in a real browser (Debian's Chromium through playwright-core):
 * the login page on node A, the phone page on node B of a two-node Redis cluster. The login page
 * asks for Ana's email and shows the number; the phone page, signed in as Ana, is pushed the
 * request with three numbers; the right one signs the browser in, a wrong one denies it.
 * Screenshots go to test-results/e2e/.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { ANA } from '../harness/cluster.js';
import { HAS_CHROMIUM, PHONE, SKIP_REASON, openPage, shot, signInOnPhone, useContexts, useDemoCluster, waitForText } from './browser.js';

if (!HAS_CHROMIUM) console.warn(`e2e: ${SKIP_REASON}`);

/** On the login page: ask Ana's phone; answers the number shown. */
async function askPhone(page: Page): Promise<string> {
  await page.getByLabel('Your email', { exact: true }).fill(ANA.email);
  await page.getByRole('button', { name: 'Send a request to my phone' }).click();
  await waitForText(page, '#ap-status-title', 'Check your phone');
  const number = (await page.locator('#ap-number').textContent()) ?? '';
  expect(number).toMatch(/^\d\d$/);
  return number;
}

/** On the phone page: wait for the one pushed request; answers its item. */
async function pushedRequest(page: Page) {
  const item = page.locator('#incoming-list li.request');
  await item.first().waitFor({ state: 'visible', timeout: 15_000 });
  expect(await item.count()).toBe(1);
  return item.first();
}

describe.skipIf(!HAS_CHROMIUM)('demo pages, push-to-approve: login page on node A, phone page on node B (Redis, two nodes)', () => {
  const demo = useDemoCluster();
  const context = useContexts(() => demo.browser);

  /** The phone page on node B, signed in as Ana, its requests list showing. */
  async function phoneSignedIn() {
    const phone = await openPage(await context(PHONE), `${demo.cluster.phone}/app`);
    await signInOnPhone(phone.page, ANA);
    await waitForText(phone.page, '#who-name', 'Ana');
    await waitForText(phone.page, '#incoming-title', 'Incoming sign-in requests');
    return phone;
  }

  it('the right number: the phone is pushed the request with three numbers, and the login page signs in at once', async () => {
    const phone = await phoneSignedIn();
    const { page, errors } = await openPage(await context(), `${demo.cluster.browser}/`);
    const number = await askPhone(page);
    await shot(page, 'approval-login-number');

    const request = await pushedRequest(phone.page);
    await waitForText(phone.page, '#incoming-list .request-where', /^Sign in request from Headless Chrome \d+ on Linux, IP 127\.0\.0\.1, \d+ s ago$/);
    await waitForText(phone.page, '#incoming-list .request-question', 'Which number do you see?');
    const choices = await request.locator('.choices button').allTextContents();
    expect(choices).toHaveLength(3);
    expect(choices).toContain(number);
    await shot(phone.page, 'approval-phone-request');

    await request.getByRole('button', { name: number, exact: true }).click();
    await waitForText(page, '#signed-in-title', 'Signed in as Ana (ana@example.com)');
    expect(await page.locator('#me-method').textContent()).toBe('Phone (approved with a number)');
    await waitForText(phone.page, '#incoming-status', 'Approved');
    expect(await phone.page.locator('#incoming-list li').count()).toBe(0);
    await shot(page, 'approval-login-signed-in');
    await shot(phone.page, 'approval-phone-approved');
    expect(errors).toEqual([]);
    expect(phone.errors.filter((e) => !/status of 403/.test(e))).toEqual([]);
  });

  it('a wrong number: the request is denied, the login page says so and offers "Try again"', async () => {
    const phone = await phoneSignedIn();
    const { page } = await openPage(await context(), `${demo.cluster.browser}/`);
    const number = await askPhone(page);
    const request = await pushedRequest(phone.page);
    const wrong = (await request.locator('.choices button').allTextContents()).find((c) => c !== number);
    expect(wrong).toBeDefined();

    await request.getByRole('button', { name: wrong, exact: true }).click();
    await waitForText(phone.page, '#incoming-status', 'Wrong number: the request was denied.');
    await waitForText(page, '#ap-status-title', 'Denied on your phone');
    expect(await page.locator('#signed-in-view').isHidden()).toBe(true);
    await page.getByRole('button', { name: 'Try again' }).waitFor({ state: 'visible' });
    await shot(page, 'approval-login-denied');
    await shot(phone.page, 'approval-phone-wrong-number');

    // Try again: a fresh request, a fresh number, and this time Deny.
    await page.getByRole('button', { name: 'Try again' }).click();
    await askPhone(page);
    const next = await pushedRequest(phone.page);
    await next.getByRole('button', { name: 'Deny', exact: true }).click();
    await waitForText(page, '#ap-status-title', 'Denied on your phone');
  });
});
