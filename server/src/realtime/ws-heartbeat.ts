/**
 * The /v1/ws heartbeat, spread over its interval (contract §4: ping every interval, drop a peer that
 * missed two). Pinging every connection in one timer tick stalls the event loop for every push due
 * at that moment (17,000 pings at once on a busy node); here the connections are bucketed into
 * `slots` groups and one group is visited per sub-tick of `intervalMs / slots`, so each connection
 * is still visited exactly once per interval, and a tick pings about `connections / slots` peers.
 */

/** What the heartbeat needs of a connection. */
export interface HeartbeatPeer {
  /** Pings sent since the last pong (the gateway resets it to 0 on every pong). */
  missedPings: number;
  ping(): void;
  terminate(): void;
}

/**
 * Shortest sub-tick, ms: below it a short interval gets fewer slots. Short sub-ticks keep each
 * burst small: at 500 ms (an earlier setting) a node with 16,700 sockets pinged ~330 peers in one
 * tick and read their pongs in a burst, and a push behind it waited (docs/benchmarks.md §7).
 */
const MIN_SUB_TICK_MS = 25;
/** Most slots an interval is cut into (25 s → 1,000 slots of 25 ms). */
export const MAX_HEARTBEAT_SLOTS = 1000;

/** How many slots an interval gets by default: up to 1,000, each sub-tick at least 25 ms. */
export function heartbeatSlots(intervalMs: number): number {
  return Math.max(1, Math.min(MAX_HEARTBEAT_SLOTS, Math.floor(intervalMs / MIN_SUB_TICK_MS)));
}

export class SpreadHeartbeat<P extends HeartbeatPeer> {
  private readonly slots: Array<Set<P>>;
  private readonly slotOf = new Map<P, number>();
  private timer: NodeJS.Timeout | null = null;
  private next = 0;

  /**
   * @param intervalMs every peer is visited once per this interval (WS_PING_INTERVAL_MS)
   * @param slotCount sub-ticks per interval; default heartbeatSlots(intervalMs)
   */
  constructor(
    private readonly intervalMs: number,
    slotCount = heartbeatSlots(intervalMs),
  ) {
    this.slots = Array.from({ length: Math.max(1, slotCount) }, () => new Set<P>());
  }

  /** Number of slots (sub-ticks per interval). */
  get slotCount(): number {
    return this.slots.length;
  }

  /** Watch a new peer: it joins the least-filled slot, so the slots stay even as peers come and go. */
  add(peer: P): void {
    if (this.slotOf.has(peer)) return;
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) if (this.slots[i]!.size < this.slots[best]!.size) best = i;
    this.slots[best]!.add(peer);
    this.slotOf.set(peer, best);
  }

  /** Stop watching a peer (it closed). */
  delete(peer: P): void {
    const slot = this.slotOf.get(peer);
    if (slot === undefined) return;
    this.slots[slot]!.delete(peer);
    this.slotOf.delete(peer);
  }

  /**
   * Visit the next slot: a peer that missed two pings is terminated (and forgotten), every other one
   * is pinged. Returns how many peers were pinged. The timer calls it; tests may too.
   */
  tick(): number {
    const slot = this.slots[this.next]!;
    this.next = (this.next + 1) % this.slots.length;
    let pinged = 0;
    for (const peer of slot) {
      if (peer.missedPings >= 2) {
        this.delete(peer);
        peer.terminate();
        continue;
      }
      peer.missedPings++;
      peer.ping();
      pinged++;
    }
    return pinged;
  }

  /** Start the sub-tick timer (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs / this.slots.length);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
