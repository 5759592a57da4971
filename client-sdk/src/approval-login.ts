import type { FlowState } from '@handoff/protocol';
import { HandoffError } from './errors.js';
import { CreatedFlowHandle, type FlowContext } from './flow.js';
import { expectShape, parseFlowState } from './utils.js';

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
 * `cancel()` withdraws it (`DELETE /v1/approvals/{id}` with the watch token; the phone is pushed
 * the `cancelled` state).
 */
export class ApprovalLogin extends CreatedFlowHandle {
  /** The 2-digit number to show: the user picks it on the phone (show it as `String(n).padStart(2, '0')`). */
  readonly number: number;

  /** @internal Use `handoff.approvalLogin()`. */
  constructor(ctx: FlowContext, created: CreatedApproval) {
    super(ctx, created, '/v1/approvals');
    this.number = created.number;
  }
}
