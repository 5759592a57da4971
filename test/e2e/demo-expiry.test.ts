/**
 * The demo pages when a code runs out (QR_TTL_SECONDS=3, its own two-node Redis cluster): the login
 * page shows "This code expired" and a "New code" button that brings a fresh code; a phone that
 * scanned but did not confirm is told too (its watch of the flow gets the expiry).
 */
import { describe, expect, it } from 'vitest';
import { ANA } from '../harness/cluster.js';
import {
  DESKTOP,
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
  useDemoCluster,
  waitForFocus,
  waitForText,
} from './browser.js';

if (!HAS_CHROMIUM) console.warn(`e2e: ${SKIP_REASON}`);

describe.skipIf(!HAS_CHROMIUM)('demo pages: an expiring code (QR_TTL_SECONDS=3)', () => {
  const demo = useDemoCluster({ QR_TTL_SECONDS: '3' });

  it('shows "This code expired" with a New code button; the phone that scanned sees the expiry too', async () => {
    const desk = await demo.browser.newContext(DESKTOP);
    const mobile = await demo.browser.newContext(PHONE);
    try {
      // The phone is signed in and ready first: the codes of this cluster live 3 seconds.
      const phone = await openPage(mobile, `${demo.cluster.phone}/app`);
      await signInOnPhone(phone.page, ANA);
      await phone.page.getByLabel('Paste the QR link or id').waitFor();

      const { page, errors, link } = await openLoginPage(desk, demo.cluster.browser);
      await waitForText(page, '#status-title', 'This code expired');
      await waitForFocus(page, 'new-code');
      expect(await page.locator('#qr-box').getAttribute('data-state')).toBe('expired');
      expect(await page.locator('#countdown-wrap').isHidden()).toBe(true);
      await shot(page, 'login-expired');

      await page.getByRole('button', { name: 'New code' }).click();
      await waitForText(page, '#status-title', 'Scan with the Handoff app');
      const fresh = await qrLink(page);
      expect(fresh).not.toBe(link);
      expect(await page.locator('#qr-img').getAttribute('src')).toContain(qrIdOf(fresh));

      // Scanned, never confirmed: both sides learn of the expiry.
      await pasteAndScan(phone.page, fresh);
      await waitForText(page, '#status-title', 'This code expired');
      await waitForText(phone.page, '#done-title', 'This code expired');
      await shot(phone.page, 'phone-expired');
      expect(errors).toEqual([]);
      expect(phone.errors).toEqual([]);
    } finally {
      await Promise.all([desk.close(), mobile.close()]);
    }
  });
});
