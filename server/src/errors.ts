import { ERRORS, type ErrorBody, type ErrorCode, type FlowState } from '@handoff/protocol';

/**
 * The one error class every layer throws. Transports turn it into their own shape with
 * `toBody()`: the HTTP error body, a Socket.IO ack, a WebSocket reply.
 */
export class HandoffError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    /** Extra fields for the body, e.g. `state` on invalid_transition, `retryAfter` on rate_limited. */
    readonly extra: { state?: FlowState; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.name = 'HandoffError';
    this.status = ERRORS[code].status;
    Object.setPrototypeOf(this, new.target.prototype);
  }

  /** `{code, message}` as carried by every transport. */
  toBody(): ErrorBody {
    return { code: this.code, message: this.message };
  }
}

/** Map anything thrown to a HandoffError; unknown errors become `internal` (never leaking details). */
export function toHandoffError(err: unknown): HandoffError {
  if (err instanceof HandoffError) return err;
  if (isStoreDown(err)) return new HandoffError('unavailable');
  return new HandoffError('internal');
}

/** True for errors that mean Redis is unreachable (connection refused/closed, command timeout). */
export function isStoreDown(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: string }).code;
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN'].includes(code ?? '') ||
    /Connection is closed|Stream isn't writeable|max retries|Command timed out|enableOfflineQueue/i.test(err.message)
  );
}
