import { isFinalState, type FlowKind } from '@handoff/protocol';
import { ExpiryHeap } from '../lib/expiry-heap.js';
import type { FlowCap, FlowRecord, FlowRef, TransitionRequest, TransitionResult } from './flow-record.js';
import type { FlowStore } from './flow-store.js';

interface Entry {
  key: string;
  record: FlowRecord;
  /** When the entry is forgotten (ms). */
  purgeAt: number;
}

export interface MemoryFlowStoreOptions {
  /** Current time, ms (tests pass a fake clock); default `Date.now`. */
  clock?: () => number;
  /** How often forgotten flows are dropped while the store holds any, ms; default 1000. 0: only on writes. */
  sweepIntervalMs?: number;
  /** Told after each timed sweep, with how many flows it dropped (tests wait for it); default none. */
  onSweep?: (purged: number) => void;
}

/** Flows one sweep step drops before yielding the event loop. */
const SWEEP_BATCH = 5_000;
/** Flows each write drops in passing, so purging keeps pace with writes even between timed sweeps. */
const PURGE_PER_WRITE = 2;

/**
 * The embedded store: one process, no Redis. Every operation runs synchronously inside one call,
 * so each is atomic exactly as the Redis Lua scripts are. Records are deep-copied in and out so
 * callers can never mutate stored state.
 *
 * Forgetting, as Redis's PEXPIREAT does, without a read: a flow is dropped at its purge time
 * (expiresAt + tombstone, or its final transition + tombstone) by a sweep that runs every
 * `sweepIntervalMs` while the store holds flows (an unref'd timer, stopped by `close()` and
 * whenever the store is empty) and a little on every write. Two min-heaps index the flows by
 * purge time and by expiresAt, so a sweep and `dueForExpiry` touch only what is due, never all
 * flows. A read past the purge time answers null even before the sweep has run.
 */
export class MemoryFlowStore implements FlowStore {
  private readonly flows = new Map<string, Entry>();
  /** createCapped's groups: group → keys (`<kind>:<id>`) of its flows, cleaned as they are counted. */
  private readonly groups = new Map<string, Set<string>>();
  private readonly clock: () => number;
  /** Every flow by purge time. */
  private readonly purges = new ExpiryHeap<Entry>((e, at) => this.flows.get(e.key) === e && e.purgeAt === at);
  /** Non-final flows by expiresAt, for expiry sweeps. */
  private readonly dues = new ExpiryHeap<Entry>(
    (e, at) => this.flows.get(e.key) === e && !isFinalState(e.record.state) && e.record.expiresAt === at,
  );
  private timer: NodeJS.Timeout | null = null;
  private next: NodeJS.Immediate | null = null;
  private closed = false;

  constructor(private readonly opts: MemoryFlowStoreOptions = {}) {
    this.clock = opts.clock ?? Date.now;
  }

  async create(record: FlowRecord, tombstoneMs: number): Promise<void> {
    const key = `${record.kind}:${record.id}`;
    const entry: Entry = { key, record: structuredClone(record), purgeAt: record.expiresAt + tombstoneMs };
    this.flows.set(key, entry);
    this.purges.push(entry.purgeAt, entry);
    if (!isFinalState(record.state)) this.dues.push(record.expiresAt, entry);
    this.purgeExpired(this.clock(), PURGE_PER_WRITE);
    this.arm();
  }

  async createCapped(record: FlowRecord, tombstoneMs: number, cap: FlowCap): Promise<boolean> {
    // One synchronous block: count and create are atomic, as in flow-create-capped.lua.
    const live = this.liveKeys(cap.group, record.createdAt);
    if (live.length >= cap.max) return false;
    // create() stores synchronously when called; nothing may yield between the count and the add.
    const stored = this.create(record, tombstoneMs);
    const group = this.groups.get(cap.group) ?? new Set<string>();
    group.add(`${record.kind}:${record.id}`);
    this.groups.set(cap.group, group);
    await stored;
    return true;
  }

  async liveInGroup(group: string, now: number): Promise<string[]> {
    return this.liveKeys(group, now).map((e) => e.record.id);
  }

  /** The group's live entries by expiresAt; drops the others from the group (and an empty group). */
  private liveKeys(group: string, now: number): Entry[] {
    const keys = this.groups.get(group);
    if (!keys) return [];
    const live: Entry[] = [];
    for (const key of keys) {
      const entry = this.entry(key);
      if (!entry || isFinalState(entry.record.state) || entry.record.expiresAt <= now) keys.delete(key);
      else live.push(entry);
    }
    if (keys.size === 0) this.groups.delete(group);
    return live.sort((a, b) => a.record.expiresAt - b.record.expiresAt);
  }

  async get(kind: FlowKind, id: string): Promise<FlowRecord | null> {
    const entry = this.entry(`${kind}:${id}`);
    return entry ? structuredClone(entry.record) : null;
  }

  async transition(req: TransitionRequest): Promise<TransitionResult> {
    const entry = this.entry(`${req.kind}:${req.id}`);
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
      // Its entry in `dues` goes stale by itself (final), and the old one in `purges` by the new time.
      entry.purgeAt = req.now + req.tombstoneMs;
      this.purges.push(entry.purgeAt, entry);
    }
    this.purgeExpired(this.clock(), PURGE_PER_WRITE);
    return { ok: true, record: copy() };
  }

  async dueForExpiry(now: number, limit: number): Promise<FlowRef[]> {
    // Same as the Redis store (and as Array.prototype.slice(0, limit) for limit >= 0).
    const n = Number.isFinite(limit) ? Math.trunc(limit) : limit > 0 ? Number.MAX_SAFE_INTEGER : 0;
    const due: Entry[] = [];
    const wallNow = this.clock();
    while (due.length < n) {
      const top = this.dues.popDue(now);
      if (!top) break;
      if (top.item.purgeAt <= wallNow) this.forget(top.item);
      else due.push(top.item);
    }
    // Still due until something expires them: back into the index.
    for (const entry of due) this.dues.push(entry.record.expiresAt, entry);
    return due.map(({ record: { kind, id } }) => ({ kind, id }));
  }

  async ping(): Promise<void> {}

  /** Stop the sweep timer and forget every flow. */
  async close(): Promise<void> {
    this.closed = true;
    this.disarm();
    this.flows.clear();
    this.groups.clear();
    this.purges.clear();
    this.dues.clear();
  }

  /**
   * Flows held in memory, including any past their purge time that the next sweep drops (what
   * `get()` no longer shows). For tests and gauges; Redis has no equivalent call.
   */
  size(): number {
    return this.flows.size;
  }

  /**
   * Drop the flows whose purge time is <= `now`, at most `max`, oldest first; returns how many.
   * Called by the timed sweep and by writes; cost O(log n) per flow dropped.
   */
  purgeExpired(now: number = this.clock(), max = Number.POSITIVE_INFINITY): number {
    let purged = 0;
    while (purged < max) {
      const top = this.purges.popDue(now);
      if (!top) break;
      this.forget(top.item);
      purged++;
    }
    this.purges.compact(this.flows.size);
    this.dues.compact(this.flows.size);
    return purged;
  }

  /** The entry if it is still within its lifetime; forgets it otherwise. */
  private entry(key: string): Entry | undefined {
    const entry = this.flows.get(key);
    if (entry && entry.purgeAt <= this.clock()) {
      this.forget(entry);
      return undefined;
    }
    return entry;
  }

  /** Drop an entry; its heap entries go stale with it. */
  private forget(entry: Entry): void {
    if (this.flows.get(entry.key) === entry) this.flows.delete(entry.key);
  }

  /** Start the sweep timer (unref'd: it never keeps the process alive) if flows wait for it. */
  private arm(): void {
    const every = this.opts.sweepIntervalMs ?? 1000;
    if (this.timer || this.closed || every <= 0) return;
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.next) clearImmediate(this.next);
    this.timer = null;
    this.next = null;
  }

  /** One timed sweep, SWEEP_BATCH flows per event-loop turn; stops the timer once the store is empty. */
  private sweep(): void {
    if (this.next) return; // the previous sweep is still going
    let total = 0;
    const step = () => {
      this.next = null;
      if (this.closed) return;
      const purged = this.purgeExpired(this.clock(), SWEEP_BATCH);
      total += purged;
      if (purged === SWEEP_BATCH) {
        this.next = setImmediate(step);
        return;
      }
      if (this.flows.size === 0) {
        this.disarm();
        this.purges.clear();
        this.dues.clear();
      }
      this.opts.onSweep?.(total);
    };
    step();
  }
}
