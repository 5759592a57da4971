/**
 * Browser side of a QR login: show the QR code, follow the flow, get the session.
 * `img` and `render` stand for your page (an <img> element and your UI update).
 */
import { Handoff, type FlowState, type Session } from '@handoff/client-sdk';

export async function qrLoginExample(url: string, img: { src: string }, render: (s: FlowState) => void): Promise<Session> {
  const handoff = new Handoff({ url });
  try {
    const qr = await handoff.qrLogin(); // creates the flow
    img.src = qr.imageUrl;
    qr.on('state', (s) => render(s)); // pending → scanned (s.scannedBy) → confirmed …
    return await qr.session(); // resolves once confirmed and redeemed; rejects on cancelled / expired with a HandoffError
  } finally {
    handoff.close();
  }
}
