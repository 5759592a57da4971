import { isFinalState, type FlowKind } from '@handoff/protocol';
import type { FlowRecord, FlowRef, TransitionRequest, TransitionResult } from './flow-record.js';
import type { FlowStore } from './flow-store.js';

interface Entry {
  record: FlowRecord;
  /** When the entry is forgotten (ms). */
  purgeAt: number;
}

/**
 * The embedded store: one process, no Redis. Every operation runs synchronously inside one call,
 * so each is atomic exactly as the Redis Lua scripts are. Records are deep-copied in and out so
 * callers can never mutate stored state.
 */
export class MemoryFlowStore implements FlowStore {
  private readonly flows = new Map<string, Entry>();
  /** Topics of non-final flows, for expiry sweeps. */
  private readonly live = new Set<string>();

  constructor(private readonly clock: () => number = Date.now) {}

  async create(record: FlowRecord, tombstoneMs: number): Promise<void> {
    const key = `${record.kind}:${record.id}`;
    this.flows.set(key, { record: structuredClone(record), purgeAt: record.expiresAt + tombstoneMs });
    if (isFinalState(record.state)) this.live.delete(key);
    else this.live.add(key);
  }

  async get(kind: FlowKind, id: string): Promise<FlowRecord | null> {
    const entry = this.entry(`${kind}:${id}`);
    return entry ? structuredClone(entry.record) : null;
  }

  async transition(req: TransitionRequest): Promise<TransitionResult> {
    const key = `${req.kind}:${req.id}`;
    const entry = this.entry(key);
    if (!entry) return { ok: false, reason: 'not_found' };
    const current = entry.record;
    const copy = () => structuredClone(current);
    if (req.to !== 'expired' && !isFinalState(current.state) && current.expiresAt <= req.now) {
      return { ok: false, reason: 'expired_due', record: copy() };
    }
    if (!req.from.includes(current.state)) return { ok: false, reason: 'invalid_transition', record: copy() };
    if (req.to === 'expired' && current.expiresAt > req.now) return { ok: false, reason: 'invalid_transition', record: copy() };
    if (req.requireUserId !== undefined && current.userId !== req.requireUserId) {
      return { ok: false, reason: 'not_user', record: copy() };
    }
    Object.assign(current, structuredClone(req.patch ?? {}));
    current.state = req.to;
    current.version += 1;
    if (isFinalState(req.to)) {
      entry.purgeAt = req.now + req.tombstoneMs;
      this.live.delete(key);
    }
    return { ok: true, record: copy() };
  }

  async dueForExpiry(now: number, limit: number): Promise<FlowRef[]> {
    const due: FlowRecord[] = [];
    for (const key of this.live) {
      const entry = this.entry(key);
      if (!entry) continue;
      if (entry.record.expiresAt <= now) due.push(entry.record);
    }
    due.sort((a, b) => a.expiresAt - b.expiresAt);
    return due.slice(0, limit).map(({ kind, id }) => ({ kind, id }));
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.flows.clear();
    this.live.clear();
  }

  /** The entry if it is still within its lifetime; forgets it otherwise. */
  private entry(key: string): Entry | undefined {
    const entry = this.flows.get(key);
    if (entry && entry.purgeAt <= this.clock()) {
      this.flows.delete(key);
      this.live.delete(key);
      return undefined;
    }
    return entry;
  }
}
