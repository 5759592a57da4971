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

/** How close the phone seems to the requester, from their IPs: a hint shown as such, never a proof. */
export type Nearby = 'same-ip' | 'same-network' | null;

/**
 * One approval as the user channel (`user:me`) shows it to the user's phone (contract §9): the
 * approval's state fields plus who asks, the app's `context` and the three `choices`. It never
 * carries `number`. On a push, `topic` is `user:me` (the channel); the approval's own topic is
 * `approval:<id>`.
 */
export interface ApprovalRequest extends Omit<FlowState, 'topic'> {
  topic: 'user:me' | Topic;
  kind: 'approval';
  /** Who asks. `nearby` (snapshot and pushes): the receiving phone's IP and the requester's agree (same address, /24, /64), as a hint. */
  requester: Requester & { nearby?: Nearby };
  context?: Record<string, unknown>;
  /** Three distinct 2-digit numbers, the browser's among them, in random order. */
  choices: number[];
}

/** The subscribe reply's `state` on the user channel: that user's pending approvals. */
export interface UserChannelSnapshot {
  topic: 'user:me';
  approvals: ApprovalRequest[];
}

/** What creating an approval answers (POST /v1/approvals, POST /v1/server/approvals). */
export interface CreatedApproval extends CreatedFlow {
  /** The 2-digit number the browser shows; the phone must pick it among its choices. */
  number: number;
}
