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

/**
 * A store command that got no answer: the connection was down or closed, the command timed out,
 * or it could not be sent. Raised for Handoff's own Redis connections (store/backend.ts turns
 * every failure that is not Redis's own reply into one), so an outage is told from a bug by class.
 * The message is the client's own; `cause` is the original error.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'ESTOREUNAVAILABLE';

  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'StoreUnavailableError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** Socket error codes that mean the store could not be reached. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Map anything thrown to a HandoffError; unknown errors become `internal` (never leaking details). */
export function toHandoffError(err: unknown): HandoffError {
  if (err instanceof HandoffError) return err;
  if (isStoreDown(err)) return new HandoffError('unavailable');
  return new HandoffError('internal');
}

/**
 * True for errors that mean the store is unreachable, known by their class or code, never by
 * their message: a StoreUnavailableError, or a socket error (ECONNREFUSED, ECONNRESET, …).
 */
export function isStoreDown(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}
