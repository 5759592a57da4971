/** Where a code's message stands. */
export type Delivery = 'queued' | 'sent' | 'failed' | 'skipped';

/**
 * One verification code as stored, keyed by (purpose, channel, recipient) — see
 * CodeCrypto.recordKey. At most one code per key: a new one replaces the old.
 */
export interface CodeRecord {
  /** Random id of this code; a new code gets a new one. Jobs and delivery updates name it. */
  generation: string;
  /** hex HMAC of the code (CodeCrypto.hash). */
  hash: string;
  /** The code encrypted (CodeCrypto.seal) for resends; null once burned. */
  sealed: string | null;
  /** Verification attempts so far (right or wrong). */
  attempts: number;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; the code is refused from then on. Never moved by a resend. */
  expiresAt: number;
  /** Epoch ms of the last send (first or resend); the cooldown runs from here. */
  lastSentAt: number;
  /** Messages queued for this code (1 + resends). */
  sends: number;
  delivery: Delivery;
}

export interface IssueRequest {
  /** Epoch ms (the caller's clock). */
  now: number;
  ttlMs: number;
  /** Cooldown between sends to one key. */
  resendMs: number;
  /** A code with this many attempts is burned. */
  maxAttempts: number;
  /** The new code, used only when no live code exists. */
  generation: string;
  hash: string;
  sealed: string;
}

export type IssueResult =
  /** A new code was stored (none existed, or the old one expired or burned). */
  | { outcome: 'created'; generation: string; expiresAt: number }
  /** The live code is to be sent again; its expiry stays. `previousSentAt`: its send before this one. */
  | { outcome: 'resent'; generation: string; expiresAt: number; previousSentAt: number }
  /** Asked again within the cooldown: nothing changed. */
  | { outcome: 'cooldown'; retryAfterMs: number };

/** The send to undo (see CodeStore.withdraw), as `issue` recorded it. */
export interface WithdrawRequest {
  /** The code `issue` created or re-sent. */
  generation: string;
  /** The `now` of that `issue` call: its lastSentAt. */
  sentAt: number;
  /** For a re-sent code, the send before (IssueResult.previousSentAt); absent for a created one. */
  previousSentAt?: number;
  resendMs: number;
}

export interface VerifyRequest {
  /** hex HMAC of the presented code. */
  hash: string;
  now: number;
  maxAttempts: number;
}

/**
 * `ok`: matched and used up (the record is gone). `wrong`: counted (the attempt that reaches
 * maxAttempts burns the code). `burned`, `expired`, `missing`: refused without counting.
 */
export type VerifyResult = 'ok' | 'wrong' | 'burned' | 'expired' | 'missing';

/**
 * Verification codes: MemoryCodeStore (embedded) or RedisCodeStore (Lua, server/lua/code-*.lua),
 * the same behaviour (test/integration/codes-store.contract.test.ts runs both).
 *
 * A record is kept until max(expiresAt, lastSentAt + resendMs): an expired or burned code still
 * enforces the resend cooldown, then disappears.
 */
export interface CodeStore {
  /** Atomically: cooldown check, then resend the live code or store a new one. */
  issue(key: string, req: IssueRequest): Promise<IssueResult>;
  /**
   * Atomically: refuse a missing, expired or burned code; otherwise count the attempt, compare in
   * constant time, and on a match delete the record (a code works once).
   */
  verify(key: string, req: VerifyRequest): Promise<VerifyResult>;
  /** The record (expired and burned ones included while kept), or null. */
  get(key: string): Promise<CodeRecord | null>;
  /**
   * Undo a send `issue` recorded whose message could not be queued, so the cooldown does not hold
   * back the client's retry: a created code is removed; a re-sent one gets its previous lastSentAt
   * back, one send fewer and delivery `failed`. Only if the record still holds that code and that
   * send (nothing issued since); false otherwise, and nothing changes.
   */
  withdraw(key: string, req: WithdrawRequest): Promise<boolean>;
  /** Set the delivery state if the record still holds code `generation`; false otherwise. */
  setDelivery(key: string, generation: string, delivery: Delivery): Promise<boolean>;
}

/** When the record may disappear: the code's expiry, or the end of the cooldown if later. */
export function purgeAt(expiresAt: number, lastSentAt: number, resendMs: number): number {
  return Math.max(expiresAt, lastSentAt + resendMs);
}
