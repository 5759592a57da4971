import type { FlowKind } from '@handoff/protocol';
import type { FlowCap, FlowRecord, FlowRef, TransitionRequest, TransitionResult } from './flow-record.js';

/**
 * Where flows live. Two implementations with one behaviour: MemoryFlowStore (embedded mode) and
 * RedisFlowStore (one Lua script per atomic operation). Both are run through the same contract tests.
 */
export interface FlowStore {
  /** Store a new flow (version 1). It is readable until expiresAt + tombstoneMs, then forgotten. */
  create(record: FlowRecord, tombstoneMs: number): Promise<void>;
  /**
   * Create a flow only if `cap.group` holds fewer than `cap.max` live flows (non-final, not past
   * expiresAt at `record.createdAt`), atomically with the count; the flow joins the group. False: the group is full,
   * nothing was created. (Push-to-approve: APPROVALS_PER_USER pending approvals per user.)
   */
  createCapped(record: FlowRecord, tombstoneMs: number, cap: FlowCap): Promise<boolean>;
  /** Ids of the group's live flows (non-final, expiresAt > now), oldest expiry first. `group` is `<kind>:<owner>`. */
  liveInGroup(group: string, now: number): Promise<string[]>;
  /** The flow, or null when unknown or past its tombstone grace. */
  get(kind: FlowKind, id: string): Promise<FlowRecord | null>;
  /** Atomic compare-and-set: applies only when the current state is in `from` (and guards hold). */
  transition(req: TransitionRequest): Promise<TransitionResult>;
  /** Non-final flows whose expiresAt <= now, oldest first, at most `limit`. */
  dueForExpiry(now: number, limit: number): Promise<FlowRef[]>;
  /** Resolves when the store answers; rejects when it is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
