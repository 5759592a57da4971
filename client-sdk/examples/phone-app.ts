/**
 * The phone app: it is logged in (`appJwt`), scans the QR code's id, shows who is asking, and
 * confirms or declines.
 */
import { Handoff, isHandoffError, type Requester } from '@handoff/client-sdk';

export async function phoneAppExample(
  url: string,
  appJwt: string,
  qrId: string,
  ask: (requester: Requester) => Promise<boolean>,
): Promise<'confirmed' | 'cancelled' | 'too late'> {
  const app = new Handoff({ url, token: appJwt });
  try {
    const info = await app.scan(qrId); // who is asking: ip, userAgent, createdAt
    if (await ask(info.requester)) {
      await app.confirm(qrId);
      return 'confirmed';
    }
    await app.cancel(qrId);
    return 'cancelled';
  } catch (err) {
    // The browser cancelled or the code expired meanwhile: the server says invalid_transition.
    if (isHandoffError(err, 'invalid_transition')) return 'too late';
    throw err;
  } finally {
    app.close();
  }
}
