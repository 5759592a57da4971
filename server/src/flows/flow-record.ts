import type { ErrorBody, FlowKind, FlowStateName, Requester, ScannedBy } from '@handoff/protocol';

/** A flow as the store keeps it. Times are epoch milliseconds. */
export interface FlowRecord {
  kind: FlowKind;
  id: string;
  state: FlowStateName;
  /** Starts at 1, +1 per transition. */
  version: number;
  /** When a non-final flow becomes `expired`. */
  expiresAt: number;
  createdAt: number;
  /** hex SHA-256 of the watch token; the token itself is never stored. */
  watchTokenHash: string;
  /** The user a session is issued for (the scanner of a qr flow, the account of a login flow). */
  userId?: string;
  /** qr: who created the flow (shown to the phone). */
  requester?: Requester;
  /** qr: what the app's backend attached at creation (server API; JSON of at most 1 KiB), shown to the phone on scan. */
  context?: Record<string, unknown>;
  /** qr: who scanned (shown to the browser). */
  scannedBy?: ScannedBy;
  /** login checked by the app (CREDENTIALS_URL): how the app names its user, for the assertion. */
  account?: { displayName: string; avatarUrl: string | null };
  /** login: why it failed. */
  error?: ErrorBody;
  /** approval: the 2-digit number the browser shows (never pushed to the phone, never in a state object). */
  number?: number;
  /** approval: three distinct 2-digit numbers, `number` among them, in random order (pushed to the phone only). */
  choices?: number[];
  /** login: ticket number in the login queue (1, 2, 3, …), for the queue position. */
  seq?: number;
}

/** Fields a transition may set besides `state` and `version`. */
export type FlowPatch = Partial<Pick<FlowRecord, 'userId' | 'scannedBy' | 'account' | 'error'>>;

export interface TransitionRequest {
  kind: FlowKind;
  id: string;
  /** Target state. */
  to: FlowStateName;
  /** States the flow must be in for the transition to apply. */
  from: readonly FlowStateName[];
  /** Current time (ms); a non-final flow whose expiresAt <= now can only move to `expired`. */
  now: number;
  patch?: FlowPatch;
  /** When set, the stored `userId` must equal it (e.g. only the scanner confirms). */
  requireUserId?: string;
  /** How long (ms) a flow that reaches a final state stays readable. */
  tombstoneMs: number;
}

export type TransitionResult =
  | { ok: true; record: FlowRecord }
  | { ok: false; reason: 'not_found' }
  /** `invalid_transition`: state not in `from`; `not_user`: requireUserId mismatch; `expired_due`: expiresAt passed, only `expired` may follow. */
  | { ok: false; reason: 'invalid_transition' | 'not_user' | 'expired_due'; record: FlowRecord };

/** A flow reference returned by expiry sweeps. */
export interface FlowRef {
  kind: FlowKind;
  id: string;
}

/** A cap on the live flows of one owner (FlowStore.createCapped). */
export interface FlowCap {
  /** Whose flows are counted: `<kind>:<owner>` (the kind of its flows, then e.g. the principalKey). */
  group: string;
  /** Most live flows the group may hold (>= 1). */
  max: number;
}
