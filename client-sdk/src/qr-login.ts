import type { FlowState } from '@handoff/protocol';
import { HandoffError } from './errors.js';
import { CreatedFlowHandle, type FlowContext } from './flow.js';
import { expectShape, parseFlowState } from './utils.js';

/** What `POST /v1/qr` answered, narrowed. Internal. */
export interface CreatedQr {
  state: FlowState;
  watchToken: string;
  qrPayload: string;
  imageUrl: string;
}

/** Narrow the answer of `POST /v1/qr`. */
export function parseCreatedQr(body: unknown): CreatedQr {
  const state = expectShape(parseFlowState(body), 'QR flow');
  const b = body as Record<string, unknown>;
  if (state.kind !== 'qr' || typeof b.watchToken !== 'string' || typeof b.qrPayload !== 'string' || typeof b.imageUrl !== 'string') {
    throw new HandoffError('bad_response', 'Unexpected QR flow from the server.');
  }
  return { state, watchToken: b.watchToken, qrPayload: b.qrPayload, imageUrl: b.imageUrl };
}

/**
 * A QR login, browser side (from `handoff.qrLogin()`): show `imageUrl`, follow `on('state')`
 * (`pending → scanned → confirmed → redeemed`, or `cancelled` / `expired`), await `session()`.
 * `id` is public (the phone scans it); `cancel()` is `DELETE /v1/qr/{id}` with the watch token.
 */
export class QrLogin extends CreatedFlowHandle {
  /** URL of the QR code as SVG: put it in an `<img>`. */
  readonly imageUrl: string;
  /** What the QR code encodes: a link the phone app opens. */
  readonly qrPayload: string;

  /** @internal Use `handoff.qrLogin()`. */
  constructor(ctx: FlowContext, created: CreatedQr) {
    super(ctx, created, '/v1/qr');
    this.imageUrl = created.imageUrl;
    this.qrPayload = created.qrPayload;
  }
}
