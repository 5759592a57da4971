/**
 * The one error catalogue (contract §2): code, HTTP status, default message.
 * HTTP bodies, Socket.IO acks and WebSocket replies all carry `{ code, message }` from here.
 */
export const ERRORS = {
  bad_request: { status: 400, message: 'The request does not match the schema.' },
  weak_password: { status: 400, message: 'The password does not meet the password rules.' },
  unauthorized: { status: 401, message: 'A valid bearer token is required.' },
  invalid_credentials: { status: 401, message: 'The email or password is wrong.' },
  invalid_watch_token: { status: 403, message: 'The watch token is missing or does not match this flow.' },
  not_scanner: { status: 403, message: 'Only the user who scanned this QR code may do that.' },
  wrong_number: { status: 403, message: 'That is not the number the browser shows; the request was denied.' },
  origin_not_allowed: { status: 403, message: 'This Origin is not allowed.' },
  not_found: { status: 404, message: 'No such resource (or it ended long enough ago to be forgotten).' },
  invalid_transition: { status: 409, message: 'The flow is not in a state that allows this.' },
  email_taken: { status: 409, message: 'An account with this email already exists.' },
  already_redeemed: { status: 410, message: 'The session of this flow was already redeemed.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  rate_limited: { status: 429, message: 'Too many requests; retry later.' },
  internal: { status: 500, message: 'Something went wrong on our side.' },
  unavailable: { status: 503, message: 'The store is unreachable; retry shortly.' },
} as const satisfies Record<string, { status: number; message: string }>;

/** Every error code Handoff can answer with. */
export type ErrorCode = keyof typeof ERRORS;

/** The error body shared by every transport. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** True when `code` is a catalogue code. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, code);
}
