import type { Redis } from 'ioredis';
import type { RedisKeys } from '../store/keys.js';
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

export class MemoryLoginCounters implements LoginCounters {
  private tickets = 0;
  private takenCount = 0;
  private readonly counted = new Set<string>();

  async nextTicket(): Promise<number> {
    return ++this.tickets;
  }

  async markTaken(flowId: string): Promise<number | null> {
    if (this.counted.has(flowId)) return null;
    this.counted.add(flowId);
    return ++this.takenCount;
  }

  async taken(): Promise<number> {
    return this.takenCount;
  }
}

interface TakeCommand {
  handoffLoginTake(flowKey: string, markerKey: string, takenKey: string): Promise<number>;
}

/**
 * The counters in Redis (`keys.loginTickets()`, `keys.loginTakenCount()`), shared by every node.
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
      this.keys.loginTakenCount(),
    );
    return n < 0 ? null : n;
  }

  async taken(): Promise<number> {
    return Number((await this.redis.get(this.keys.loginTakenCount())) ?? 0);
  }
}
