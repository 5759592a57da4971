import { ERRORS, isErrorCode, type FlowState } from '@handoff/protocol';
import { SDK_ERRORS, type HandoffErrorCode } from './codes.js';

/** Extra facts an error may carry. */
export interface HandoffErrorDetails {
  /** HTTP status of the answer, when the error came from an HTTP response. */
  status?: number;
  /** The flow's state: on `invalid_transition` (the current state), `cancelled`, `expired`, `failed`. */
  state?: FlowState;
  /** Seconds the server asked to wait (`Retry-After` on 429/503). */
  retryAfter?: number;
  /** The underlying error (a network failure, a parse error). */
  cause?: unknown;
}

/**
 * The one error class of the SDK. `code` is a server catalogue code (`already_redeemed`,
 * `invalid_credentials`, …) or an SDK code (`cancelled`, `expired`, `failed`, `timeout`,
 * `aborted`, `closed`, `network`, `bad_response`); see the README's error table.
 */
export class HandoffError extends Error {
  /** A catalogue or SDK code; stable, safe to switch on. */
  readonly code: HandoffErrorCode;
  /** HTTP status, when the error came from an HTTP answer. */
  readonly status?: number;
  /** The flow's state, when the error is about one. */
  readonly state?: FlowState;
  /** Seconds the server asked to wait before retrying. */
  readonly retryAfter?: number;

  constructor(code: HandoffErrorCode, message: string = defaultMessage(code), details: HandoffErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HandoffError';
    this.code = code;
    if (details.status !== undefined) this.status = details.status;
    if (details.state !== undefined) this.state = details.state;
    if (details.retryAfter !== undefined) this.retryAfter = details.retryAfter;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** The default message of a code. */
export function defaultMessage(code: HandoffErrorCode): string {
  return isErrorCode(code) ? ERRORS[code].message : SDK_ERRORS[code];
}

/** True when `err` is a HandoffError (with `code`, when given). */
export function isHandoffError(err: unknown, code?: HandoffErrorCode): err is HandoffError {
  return err instanceof HandoffError && (code === undefined || err.code === code);
}

/** Codes worth retrying after a backoff: the server or the path to it may recover. */
const TEMPORARY: ReadonlySet<HandoffErrorCode> = new Set<HandoffErrorCode>([
  'network',
  'timeout',
  'unavailable',
  'rate_limited',
  'internal',
  'bad_response',
]);

/** True when the operation may succeed if tried again later. */
export function isTemporary(err: unknown): boolean {
  return err instanceof HandoffError && TEMPORARY.has(err.code);
}

/** Anything thrown → a HandoffError (unknown errors become `network`, keeping the original as `cause`). */
export function toHandoffError(err: unknown): HandoffError {
  if (err instanceof HandoffError) return err;
  return new HandoffError('network', err instanceof Error ? err.message : String(err), { cause: err });
}
