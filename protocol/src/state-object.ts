import type { FlowKind, FlowStateName, Topic } from './states.js';
import type { ErrorBody } from './errors.js';

/** Who scanned a QR flow; shown to the browser. */
export interface ScannedBy {
  userId: string;
  displayName: string;
  avatarUrl: string | null;
}

/** Who created a QR flow; shown to the phone before it confirms. */
export interface Requester {
  ip: string;
  userAgent: string;
  createdAt: string;
}

/**
 * The state object (contract §1): the same JSON for HTTP reads, subscribe replies and pushes.
 * It never carries a session token or a password.
 */
export interface FlowState {
  topic: Topic;
  kind: FlowKind;
  id: string;
  state: FlowStateName;
  version: number;
  /** ISO 8601 time at which a non-final flow becomes `expired`. */
  expiresAt: string;
  /** qr flows, from `scanned` on. */
  scannedBy?: ScannedBy;
  /** login flows while `queued`: requests ahead of this one. */
  position?: number;
  /** login flows in `failed`. */
  error?: ErrorBody;
}

/** What a creator gets back once, at creation: the state plus its secret watch token. */
export interface CreatedFlow extends FlowState {
  watchToken: string;
}

/** What every redeemed session carries. */
interface SessionBase {
  /** The JWT: what it is depends on `tokenType`. */
  token: string;
  /** ISO 8601 time at which `token` stops being valid. */
  expiresAt: string;
}

/**
 * The redeemed session (contract §7), told apart by `tokenType`:
 * - `'session'`: a built-in user (`ACCOUNTS=builtin|both`); `token` is a Handoff session JWT, sent as
 *   `Authorization: Bearer`.
 * - `'assertion'`: an app user (`ACCOUNTS=app|both`); `token` is a short-lived, one-time JWT signed by
 *   Handoff, for the app's backend to verify (against Handoff's JWKS) before it mints its own session.
 */
export type Session =
  | (SessionBase & { tokenType: 'session'; user: PublicUser })
  | (SessionBase & { tokenType: 'assertion'; user: AppUser });

/** An app user as a redeemed assertion shows it: `id` is the app's `sub` (opaque); Handoff knows no email. */
export interface AppUser {
  id: string;
  displayName: string;
  avatarUrl: string | null;
}

/** A user as the API shows it. */
export interface PublicUser {
  id: string;
  email: string;
  displayName: string;
  avatarUrl?: string | null;
}
