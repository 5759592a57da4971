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

/** The redeemed session: a JWT for the user who confirmed / logged in. */
export interface Session {
  token: string;
  /** `session`: a Handoff session JWT (a built-in account); `assertion`: a one-time assertion for the app's backend (an app user, contract §7). */
  tokenType: 'session' | 'assertion';
  expiresAt: string;
  user: PublicUser;
}

/** A user as the API shows it. */
export interface PublicUser {
  id: string;
  /** Built-in accounts only: an app user's email is the app's business. */
  email?: string;
  displayName: string;
  avatarUrl?: string | null;
}
