import type { FlowState } from '@handoff/protocol';
import type { FlowRecord } from '../flows/flow-record.js';
import type { TopicHub } from '../realtime/topic-hub.js';
import { positionOf, type LoginCounters } from './login-counters.js';

/** Signal sent through the fan-out each time a worker takes a login job off the queue. */
export const LOGIN_TAKEN_SIGNAL = 'login-taken';

/**
 * Position pushes per event-loop turn during a sweep: a sweep over thousands of queued logins is
 * spread over turns, so reads and socket messages are served between its chunks.
 */
const SWEEP_CHUNK = 64;

/**
 * How long a `taken` count read from the store serves the next reads on this node, ms. Between
 * reads the take signals keep the count current (a worker signals every take); the store read
 * only catches a node up after a missed signal (a node just started, a subscriber reconnecting).
 * In Redis mode it saves a round trip on nearly every read of a queued login.
 */
const TAKEN_FRESH_MS = 100;

/**
 * Pushes queue positions to the subscribers on this node. A worker that takes a job sends one
 * signal with the new `taken` count to every node; each node recomputes the positions of the
 * queued logins it has seen read (snapshots, long-polls) and pushes those that changed. Position
 * pushes are not transitions: they carry the same `version` with a lower `position`.
 *
 * Every take moves every queued login, so pushing each move would cost queue length x takes:
 * O(N²) pushes to drain a queue of N. Sweeps are throttled instead (`LOGIN_POSITION_INTERVAL_MS`):
 * the first take after a quiet spell starts a sweep at once, later ones within the interval are
 * coalesced into one sweep at its end, with the newest count. A sweep pushes SWEEP_CHUNK logins
 * per event-loop turn. Positions pushed are exact at the time and never go up; a client sees at
 * most one position change per sweep.
 */
export class LoginPositions {
  /**
   * Queued logins this node has served a state for: topic → last state pushed, its ticket and
   * expiresAt. An entry leaves when a later state of the login reaches this node, or, should that
   * state never arrive here (a missed delivery), at the first sweep after its expiresAt.
   */
  private readonly watched = new Map<string, { state: FlowState; ticket: number; expiresAt: number }>();
  /** Highest `taken` seen: positions only ever go down, even if signals arrive out of order. */
  private maxTaken = 0;
  /** When the last sweep started (on `now`), and the sweep due at the interval's end. */
  private lastSweep = -Infinity;
  private pending: NodeJS.Timeout | null = null;
  private closed = false;
  /** When the last store read of `taken` that succeeded was issued (on `now`). */
  private takenReadAt = -Infinity;
  private takenRead: Promise<void> | null = null;

  constructor(
    private readonly hub: TopicHub,
    private readonly counters: LoginCounters,
    private readonly intervalMs = 0,
    /** Monotonic milliseconds (tests pass their own). */
    private readonly now: () => number = () => performance.now(),
  ) {
    hub.onSignal(LOGIN_TAKEN_SIGNAL, ({ taken }) => typeof taken === 'number' && this.onTaken(taken));
    hub.addSink((state) => {
      if (state.kind === 'login' && state.state !== 'queued') this.watched.delete(state.topic);
    });
  }

  /**
   * A FlowService state decorator: a queued login gets its position (from the take signals, and
   * a counter read at most every TAKEN_FRESH_MS), and is remembered so its later position changes
   * are pushed from this node.
   */
  async decorate(record: FlowRecord, state: FlowState): Promise<FlowState> {
    if (record.kind !== 'login' || record.state !== 'queued' || record.seq === undefined) return state;
    if (this.now() - this.takenReadAt >= TAKEN_FRESH_MS) await this.readTaken();
    const decorated = { ...state, position: positionOf(record.seq, this.maxTaken) };
    const known = this.watched.get(decorated.topic);
    if (!known || (known.state.position ?? Infinity) > decorated.position) this.watched.set(decorated.topic, { state: decorated, ticket: record.seq, expiresAt: record.expiresAt });
    return decorated;
  }

  /** Catch up with the store's `taken` count; concurrent callers share one read. */
  private readTaken(): Promise<void> {
    this.takenRead ??= (async () => {
      const issuedAt = this.now();
      try {
        this.maxTaken = Math.max(this.maxTaken, await this.counters.taken());
        this.takenReadAt = issuedAt;
      } finally {
        this.takenRead = null;
      }
    })();
    return this.takenRead;
  }

  /** Queued logins being tracked on this node. */
  size(): number {
    return this.watched.size;
  }

  /** Stop a sweep that is due (shutdown). */
  close(): void {
    this.closed = true;
    if (this.pending) clearTimeout(this.pending);
    this.pending = null;
  }

  private onTaken(taken: number): void {
    if (taken <= this.maxTaken) return;
    this.maxTaken = taken;
    if (this.pending) return; // a sweep is due; it will use the newest count
    const wait = this.lastSweep + this.intervalMs - this.now();
    if (wait <= 0) return this.sweep();
    this.pending = setTimeout(() => {
      this.pending = null;
      this.sweep();
    }, wait);
    this.pending.unref();
  }

  /**
   * Push the new position of every watched login, SWEEP_CHUNK per turn. Each chunk reads the
   * newest `taken`, so a later chunk never pushes a position above one already pushed; a login
   * that moved on (or was read again) meanwhile is skipped.
   */
  private sweep(): void {
    this.lastSweep = this.now();
    const entries = [...this.watched.values()];
    let i = 0;
    const step = () => {
      if (this.closed) return;
      const taken = this.maxTaken;
      const wallNow = Date.now(); // expiresAt is epoch ms, unlike `now`
      for (const end = Math.min(i + SWEEP_CHUNK, entries.length); i < end; i++) {
        const entry = entries[i];
        if (this.watched.get(entry.state.topic) !== entry) continue;
        if (entry.expiresAt <= wallNow) {
          this.watched.delete(entry.state.topic); // no longer queued, whether or not we heard
          continue;
        }
        const position = positionOf(entry.ticket, taken);
        if (position === entry.state.position) continue;
        entry.state = { ...entry.state, position };
        this.hub.deliver(entry.state);
      }
      if (i < entries.length) setImmediate(step);
    };
    step();
  }
}
