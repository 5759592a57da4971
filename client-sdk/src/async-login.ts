import type { FlowState, Session, Topic } from '@handoff/protocol';
import { HandoffError } from './errors.js';
import { FlowHandle, type FlowContext } from './flow.js';
import { expectShape, parseFlowState } from './utils.js';

/** What `POST /v1/sessions` with `Prefer: respond-async` answered, narrowed. Internal. */
export type AsyncLoginStart = { queued: true; state: FlowState; watchToken: string } | { queued: false; session: Session };

/** Narrow a 202 answer of `POST /v1/sessions` (a queued login flow). */
export function parseQueuedLogin(body: unknown): { state: FlowState; watchToken: string } {
  const state = expectShape(parseFlowState(body), 'login flow');
  const watchToken = (body as Record<string, unknown>).watchToken;
  if (state.kind !== 'login' || typeof watchToken !== 'string') throw new HandoffError('bad_response', 'Unexpected login flow from the server.');
  return { state, watchToken };
}

/**
 * An async password login (from `handoff.asyncLogin()`). When the server queued it (202), it is a
 * `login` flow: follow `on('state')` (`queued` with `position` → `processing` → `succeeded`, or
 * `failed` / `expired`) and await `session()`. When the server answered the session at once
 * (200, a server without async logins), `queued` is false, `state` is null, no `state` event
 * ever fires, and `session()` resolves at once.
 */
export class AsyncLogin extends FlowHandle {
  /** True when the server queued the login (202); false when it answered the session at once (200). */
  readonly queued: boolean;
  /** The login flow's id; null when not queued. */
  readonly id: string | null;
  /** `login:<id>`; null when not queued. */
  readonly topic: Topic | null;

  /** @internal Use `handoff.asyncLogin()`. */
  constructor(ctx: FlowContext, start: AsyncLoginStart) {
    super(ctx, start.queued ? { topic: start.state.topic, watchToken: start.watchToken, initial: start.state } : { session: start.session });
    this.queued = start.queued;
    this.id = start.queued ? start.state.id : null;
    this.topic = start.queued ? start.state.topic : null;
  }
}
