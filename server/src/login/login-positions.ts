import type { FlowState } from '@handoff/protocol';
import type { FlowRecord } from '../flows/flow-record.js';
import type { TopicHub } from '../realtime/topic-hub.js';
import { positionOf, type LoginCounters } from './login-counters.js';

/** Signal sent through the fan-out each time a worker takes a login job off the queue. */
export const LOGIN_TAKEN_SIGNAL = 'login-taken';

/**
 * Pushes queue positions to the subscribers on this node. A worker that takes a job sends one
 * signal with the new `taken` count to every node; each node recomputes the positions of the
 * queued logins it has seen read (snapshots, long-polls) and pushes those that changed. Position
 * pushes are not transitions: they carry the same `version` with a lower `position`.
 */
export class LoginPositions {
  /** Queued logins this node has served a state for: topic → last state pushed, and its ticket. */
  private readonly watched = new Map<string, { state: FlowState; ticket: number }>();
  /** Highest `taken` seen: positions only ever go down, even if signals arrive out of order. */
  private maxTaken = 0;

  constructor(
    private readonly hub: TopicHub,
    private readonly counters: LoginCounters,
  ) {
    hub.onSignal(LOGIN_TAKEN_SIGNAL, ({ taken }) => typeof taken === 'number' && this.onTaken(taken));
    hub.addSink((state) => {
      if (state.kind === 'login' && state.state !== 'queued') this.watched.delete(state.topic);
    });
  }

  /**
   * A FlowService state decorator: a queued login gets its position (one counter read), and is
   * remembered so its later position changes are pushed from this node.
   */
  async decorate(record: FlowRecord, state: FlowState): Promise<FlowState> {
    if (record.kind !== 'login' || record.state !== 'queued' || record.seq === undefined) return state;
    this.maxTaken = Math.max(this.maxTaken, await this.counters.taken());
    const decorated = { ...state, position: positionOf(record.seq, this.maxTaken) };
    const known = this.watched.get(decorated.topic);
    if (!known || (known.state.position ?? Infinity) > decorated.position) this.watched.set(decorated.topic, { state: decorated, ticket: record.seq });
    return decorated;
  }

  /** Queued logins being tracked on this node. */
  size(): number {
    return this.watched.size;
  }

  private onTaken(taken: number): void {
    if (taken <= this.maxTaken) return;
    this.maxTaken = taken;
    for (const [topic, entry] of this.watched) {
      const position = positionOf(entry.ticket, taken);
      if (position === entry.state.position) continue;
      entry.state = { ...entry.state, position };
      this.watched.set(topic, entry);
      this.hub.deliver(entry.state);
    }
  }
}
