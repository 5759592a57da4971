import { ExpiryHeap } from '../lib/expiry-heap.js';
import { CodeCrypto } from './code-crypto.js';
import {
  purgeAt,
  type CodeRecord,
  type CodeStore,
  type Delivery,
  type IssueRequest,
  type IssueResult,
  type VerifyRequest,
  type VerifyResult,
  type WithdrawRequest,
} from './code-store.js';

interface Entry {
  key: string;
  record: CodeRecord;
  purgeAt: number;
}

export interface MemoryCodeStoreOptions {
  /** Current time for purging, ms; default `Date.now` (the real clock, as Redis's PEXPIREAT). */
  clock?: () => number;
  /** How often purged records are dropped while the store holds any, ms; default 1000. 0: only on issues. */
  sweepIntervalMs?: number;
  /** Told after each timed sweep, with how many records it dropped (tests wait for it); default none. */
  onSweep?: (purged: number) => void;
}

/** Records each issue drops in passing, so purging keeps pace with issues between timed sweeps. */
const PURGE_PER_ISSUE = 2;
/** Records one timed sweep drops at most (the rest wait for the next tick). */
const SWEEP_BATCH = 5_000;

/**
 * Codes in process memory (embedded mode); the behaviour of RedisCodeStore. A record is dropped
 * at its purge time without a read: a min-heap by purge time is swept a little on every issue and
 * every `sweepIntervalMs` by an unref'd timer armed only while records are held (stopped by
 * `close()`), touching only what is due.
 */
export class MemoryCodeStore implements CodeStore {
  private readonly entries = new Map<string, Entry>();
  private readonly purges = new ExpiryHeap<Entry>((e, at) => this.entries.get(e.key) === e && e.purgeAt === at);
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: MemoryCodeStoreOptions = {}) {
    this.clock = opts.clock ?? Date.now;
  }

  async issue(key: string, req: IssueRequest): Promise<IssueResult> {
    this.purgeExpired(this.clock(), PURGE_PER_ISSUE);
    const entry = this.live(key);
    if (entry) {
      const r = entry.record;
      const cooldownEnds = r.lastSentAt + req.resendMs;
      if (req.now < cooldownEnds) return { outcome: 'cooldown', retryAfterMs: cooldownEnds - req.now };
      if (req.now < r.expiresAt && r.attempts < req.maxAttempts && r.sealed !== null) {
        const previousSentAt = r.lastSentAt;
        r.lastSentAt = req.now;
        r.sends += 1;
        r.delivery = 'queued';
        this.setPurgeAt(entry, purgeAt(r.expiresAt, r.lastSentAt, req.resendMs));
        return { outcome: 'resent', generation: r.generation, expiresAt: r.expiresAt, previousSentAt };
      }
    }
    const record: CodeRecord = {
      generation: req.generation,
      hash: req.hash,
      sealed: req.sealed,
      attempts: 0,
      createdAt: req.now,
      expiresAt: req.now + req.ttlMs,
      lastSentAt: req.now,
      sends: 1,
      delivery: 'queued',
    };
    const created: Entry = { key, record, purgeAt: 0 };
    this.entries.set(key, created);
    this.setPurgeAt(created, purgeAt(record.expiresAt, req.now, req.resendMs));
    this.arm();
    return { outcome: 'created', generation: record.generation, expiresAt: record.expiresAt };
  }

  async verify(key: string, req: VerifyRequest): Promise<VerifyResult> {
    const entry = this.live(key);
    if (!entry) return 'missing';
    const r = entry.record;
    if (req.now >= r.expiresAt) return 'expired';
    if (r.attempts >= req.maxAttempts) return 'burned';
    r.attempts += 1;
    if (CodeCrypto.matches(req.hash, r.hash)) {
      this.entries.delete(key);
      return 'ok';
    }
    if (r.attempts >= req.maxAttempts) r.sealed = null;
    return 'wrong';
  }

  async get(key: string): Promise<CodeRecord | null> {
    const entry = this.live(key);
    return entry ? { ...entry.record } : null;
  }

  async withdraw(key: string, req: WithdrawRequest): Promise<boolean> {
    const entry = this.live(key);
    if (!entry || entry.record.generation !== req.generation || entry.record.lastSentAt !== req.sentAt) return false;
    if (req.previousSentAt === undefined) {
      this.entries.delete(key);
      return true;
    }
    const r = entry.record;
    r.lastSentAt = req.previousSentAt;
    r.sends -= 1;
    r.delivery = 'failed';
    this.setPurgeAt(entry, purgeAt(r.expiresAt, r.lastSentAt, req.resendMs));
    return true;
  }

  async setDelivery(key: string, generation: string, delivery: Delivery): Promise<boolean> {
    const entry = this.live(key);
    if (!entry || entry.record.generation !== generation) return false;
    entry.record.delivery = delivery;
    return true;
  }

  /** Records held in memory, including any past their purge time that the next sweep drops (tests). */
  size(): number {
    return this.entries.size;
  }

  /** Stop the sweep timer and forget every record. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.entries.clear();
    this.purges.clear();
  }

  /** Drop the records whose purge time is <= `now`, at most `max`; returns how many. O(log n) each. */
  purgeExpired(now: number = this.clock(), max = Number.POSITIVE_INFINITY): number {
    let purged = 0;
    while (purged < max) {
      const top = this.purges.popDue(now);
      if (!top) break;
      this.entries.delete(top.item.key);
      purged++;
    }
    this.purges.compact(this.entries.size);
    return purged;
  }

  /** The entry unless purged. Like Redis's PEXPIREAT, purging follows the real clock, not `now`. */
  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && this.clock() >= entry.purgeAt) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private setPurgeAt(entry: Entry, at: number): void {
    entry.purgeAt = at;
    this.purges.push(at, entry);
  }

  /** Start the sweep timer (unref'd) while records are held; it stops itself once none are. */
  private arm(): void {
    const every = this.opts.sweepIntervalMs ?? 1000;
    if (this.timer || this.closed || every <= 0) return;
    this.timer = setInterval(() => {
      const purged = this.purgeExpired(this.clock(), SWEEP_BATCH);
      if (this.entries.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
        this.purges.clear();
      }
      this.opts.onSweep?.(purged);
    }, every);
    this.timer.unref();
  }
}
