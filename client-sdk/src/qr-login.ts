import type { FlowState, Topic } from '@handoff/protocol';
import { HandoffError } from './errors.js';
import { FlowHandle, type FlowContext } from './flow.js';
import { expectShape, parseFlowState, type WaitOptions } from './utils.js';

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
 */
export class QrLogin extends FlowHandle {
  /** The flow id (public; the phone scans it). */
  readonly id: string;
  /** `qr:<id>`. */
  readonly topic: Topic;
  /** URL of the QR code as SVG: put it in an `<img>`. */
  readonly imageUrl: string;
  /** What the QR code encodes: a link the phone app opens. */
  readonly qrPayload: string;
  /** When the flow expires if nobody confirms it (ISO 8601, server clock). */
  readonly expiresAt: string;

  /** @internal Use `handoff.qrLogin()`. */
  constructor(ctx: FlowContext, created: CreatedQr) {
    super(ctx, { topic: created.state.topic, watchToken: created.watchToken, initial: created.state });
    this.id = created.state.id;
    this.topic = created.state.topic;
    this.imageUrl = created.imageUrl;
    this.qrPayload = created.qrPayload;
    this.expiresAt = created.state.expiresAt;
  }

  /** The flow's current state (starts as `pending`). */
  override get state(): FlowState {
    return super.state as FlowState;
  }

  /**
   * Cancel from the browser (`DELETE /v1/qr/{id}` with the watch token): resolves with the
   * `cancelled` state; `session()` then rejects with `cancelled`. Rejects with
   * `invalid_transition` (and `error.state`) when the flow is past cancelling.
   */
  cancel(opts: WaitOptions = {}): Promise<FlowState> {
    return this.cancelAt(`/v1/qr/${encodeURIComponent(this.id)}`, opts);
  }
}
