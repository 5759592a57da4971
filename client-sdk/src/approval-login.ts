import type { FlowState, Topic } from '@handoff/protocol';
import { HandoffError } from './errors.js';
import { FlowHandle, type FlowContext } from './flow.js';
import { expectShape, parseFlowState, type WaitOptions } from './utils.js';

/** What `POST /v1/approvals` answered, narrowed. Internal. */
export interface CreatedApproval {
  state: FlowState;
  watchToken: string;
  number: number;
}

/** Narrow the answer of `POST /v1/approvals`. */
export function parseCreatedApproval(body: unknown): CreatedApproval {
  const state = expectShape(parseFlowState(body), 'approval flow');
  const b = body as Record<string, unknown>;
  if ((state.kind as string) !== 'approval' || typeof b.watchToken !== 'string' || typeof b.number !== 'number' || !Number.isInteger(b.number)) {
    throw new HandoffError('bad_response', 'Unexpected approval flow from the server.');
  }
  return { state, watchToken: b.watchToken, number: b.number };
}

/**
 * Push-to-approve, browser side (from `handoff.approvalLogin({login})`): show `number` big, follow
 * `on('state')` (`pending → approved → redeemed`, or `denied` / `cancelled` / `expired`), await
 * `session()`. The user's phone is pushed the request and picks `number` among three choices.
 */
export class ApprovalLogin extends FlowHandle {
  /** The flow id. */
  readonly id: string;
  /** `approval:<id>`. */
  readonly topic: Topic;
  /** The 2-digit number to show: the user picks it on the phone (show it as `String(n).padStart(2, '0')`). */
  readonly number: number;
  /** When the request expires if nobody approves it (ISO 8601, server clock). */
  readonly expiresAt: string;

  /** @internal Use `handoff.approvalLogin()`. */
  constructor(ctx: FlowContext, created: CreatedApproval) {
    super(ctx, { topic: created.state.topic, watchToken: created.watchToken, initial: created.state });
    this.id = created.state.id;
    this.topic = created.state.topic;
    this.number = created.number;
    this.expiresAt = created.state.expiresAt;
  }

  /** The flow's current state (starts as `pending`). */
  override get state(): FlowState {
    return super.state as FlowState;
  }

  /**
   * Withdraw the request from the browser (`DELETE /v1/approvals/{id}` with the watch token):
   * resolves with the `cancelled` state, and the phone is pushed it; `session()` then rejects with
   * `cancelled`. Rejects with `invalid_transition` (and `error.state`) when it was already answered.
   */
  cancel(opts: WaitOptions = {}): Promise<FlowState> {
    return this.cancelAt(`/v1/approvals/${encodeURIComponent(this.id)}`, opts);
  }
}
