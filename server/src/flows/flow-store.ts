import type { FlowKind } from '@handoff/protocol';
import type { FlowRecord, FlowRef, TransitionRequest, TransitionResult } from './flow-record.js';

/**
 * Where flows live. Two implementations with one behaviour: MemoryFlowStore (embedded mode) and
 * RedisFlowStore (one Lua script per atomic operation). Both are run through the same contract tests.
 */
export interface FlowStore {
  /** Store a new flow (version 1). It is readable until expiresAt + tombstoneMs, then forgotten. */
  create(record: FlowRecord, tombstoneMs: number): Promise<void>;
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
