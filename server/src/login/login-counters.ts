import type { Redis } from 'ioredis';
import { FLOW_SHARDS, type RedisKeys } from '../store/keys.js';
import { defineScripts } from '../store/lua-scripts.js';

/**
 * Two counters make the queue position O(1): every async login draws a ticket (1, 2, 3, …) when it
 * is queued, and `taken` counts jobs workers have taken off the queue. Jobs start in FIFO order,
 * so the logins ahead of ticket t are t - 1 - taken.
 */
export interface LoginCounters {
  /** Draw the next ticket. */
  nextTicket(): Promise<number>;
  /** Count this flow's job as taken (once per flow); the new total, or null if already counted. */
  markTaken(flowId: string): Promise<number | null>;
  /** Jobs taken so far. */
  taken(): Promise<number>;
}

/** Logins ahead of a ticket, never negative. */
export function positionOf(ticket: number, taken: number): number {
  return Math.max(0, ticket - 1 - taken);
}

export interface MemoryLoginCountersOptions {
  /**
   * How long a flow's "taken" marker is kept, ms; default 3,600,000 (LOGIN_TTL_SECONDS' maximum).
   * A login job only runs again (a retry) while its flow can still be processed, which ends at the
   * flow's expiry; in Redis the marker lives in the flow's hash and goes with it.
   */
  rememberMs?: number;
  /** Current time, ms; default `Date.now`. */
  clock?: () => number;
}

/** Shortest wait between two timed prunes of the markers, ms. */
const PRUNE_EVERY_MS = 1_000;

/**
 * The counters in process memory (embedded mode). Each marker is kept `rememberMs`, the same
 * time for all, so the Map's insertion order is their expiry order: expired markers are dropped
 * from its head, on every take and by one unref'd timer armed only while markers are held. Memory
 * holds one marker per login taken in the last `rememberMs`, not one per login ever taken.
 */
export class MemoryLoginCounters implements LoginCounters {
  private tickets = 0;
  private takenCount = 0;
  /** flowId → when its marker is forgotten (ms), oldest first. */
  private readonly counted = new Map<string, number>();
  private readonly rememberMs: number;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: MemoryLoginCountersOptions = {}) {
    this.rememberMs = opts.rememberMs ?? 3_600_000;
    this.clock = opts.clock ?? Date.now;
  }

  async nextTicket(): Promise<number> {
    return ++this.tickets;
  }

  async markTaken(flowId: string): Promise<number | null> {
    const now = this.clock();
    this.prune(now);
    if (this.counted.has(flowId)) return null;
    this.counted.set(flowId, now + this.rememberMs);
    this.arm(now);
    return ++this.takenCount;
  }

  async taken(): Promise<number> {
    return this.takenCount;
  }

  /** Stop the prune timer (shutdown; optional: the timer is unref'd and stops once no marker is held). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** "Taken" markers held (tests). */
  size(): number {
    return this.counted.size;
  }

  /** Drop the markers forgotten by `now`; O(1) per marker dropped. */
  private prune(now: number): void {
    for (const [flowId, forgetAt] of this.counted) {
      if (forgetAt > now) break;
      this.counted.delete(flowId);
    }
  }

  /** Arm the prune timer for the oldest marker (unref'd: it never keeps the process alive). */
  private arm(now: number): void {
    if (this.timer) return;
    const first = this.counted.values().next();
    if (first.done) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const at = this.clock();
      this.prune(at);
      this.arm(at);
    }, Math.max(first.value - now, PRUNE_EVERY_MS));
    this.timer.unref();
  }
}

interface TakeCommand {
  handoffLoginTake(flowKey: string, markerKey: string, takenKey: string): Promise<number>;
}

/**
 * The counters in Redis, shared by every node: tickets in `keys.loginTickets()`; jobs taken in one
 * counter per flow shard, `keys.loginTakenCount(shard)`, so that login-take.lua counts a flow in
 * its own hash slot (Redis Cluster), plus the single counter of before the shards
 * (`keys.legacyLoginTakenCount()`, read only). `taken` is their sum.
 * A flow counted as taken gets the marker `keys.flowTaken('login', id)`, which lives and dies with
 * the flow's hash (login-take.lua); a flow already gone is not counted (null).
 */
export class RedisLoginCounters implements LoginCounters {
  private readonly cmd: Redis & TakeCommand;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.cmd = defineScripts<TakeCommand>(redis, { handoffLoginTake: ['login-take', 3] });
  }

  async nextTicket(): Promise<number> {
    return this.redis.incr(this.keys.loginTickets());
  }

  async markTaken(flowId: string): Promise<number | null> {
    const n = await this.cmd.handoffLoginTake(
      this.keys.flow('login', flowId),
      this.keys.flowTaken('login', flowId),
      this.keys.loginTakenCountOf(flowId),
    );
    // The total read after this flow was counted: never less than the count at that moment.
    return n < 0 ? null : this.taken();
  }

  /** The sum of the shard counters and the legacy one (single-key GETs sent at once: no cross-slot MGET). */
  async taken(): Promise<number> {
    const keys = [this.keys.legacyLoginTakenCount(), ...Array.from({ length: FLOW_SHARDS }, (_, shard) => this.keys.loginTakenCount(shard))];
    const values = await Promise.all(keys.map((key) => this.redis.get(key)));
    return values.reduce((sum, v) => sum + Number(v ?? 0), 0);
  }
}
