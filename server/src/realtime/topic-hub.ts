import type { FlowState } from '@handoff/protocol';
import type { Logger } from 'pino';

/** Receives a state pushed to this node. */
export type StateListener = (state: FlowState) => void;

/** A small JSON payload of a signal between nodes. */
export type SignalPayload = Record<string, string | number | boolean>;
export type SignalListener = (payload: SignalPayload) => void;

/**
 * This node's local delivery point: every state that reaches the node (from its own transitions or
 * from another node through Redis) is handed to `deliver`, which gives it to every transport sink
 * (Socket.IO rooms) and to per-topic listeners (plain WebSocket clients, long-poll waiters).
 */
export class TopicHub {
  private readonly topics = new Map<string, Set<StateListener>>();
  private readonly sinks = new Set<StateListener>();
  private readonly signals = new Map<string, Set<SignalListener>>();

  constructor(
    /** Where a listener's failure is reported (debug): it is its transport's problem, never the others'. */
    private readonly log?: Pick<Logger, 'debug'>,
  ) {}

  /** Listen for states of one topic; returns the off-function. */
  listen(topic: string, listener: StateListener): () => void {
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.topics.get(topic);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.topics.delete(topic);
    };
  }

  /** Add a sink that sees every state (a transport that routes by topic itself); returns the off-function. */
  addSink(sink: StateListener): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  /** Hand a state to this node's sinks and listeners. A throwing listener never stops the others. */
  deliver(state: FlowState): void {
    for (const sink of this.sinks) this.safeCall(sink, state);
    const set = this.topics.get(state.topic);
    if (set) for (const listener of [...set]) this.safeCall(listener, state);
  }

  /** Listen for a named signal; returns the off-function. */
  onSignal(name: string, listener: SignalListener): () => void {
    let set = this.signals.get(name);
    if (!set) this.signals.set(name, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Hand a signal to this node's listeners. */
  signal(name: string, payload: SignalPayload): void {
    for (const listener of this.signals.get(name) ?? []) {
      try {
        listener(payload);
      } catch (err) {
        // as for states: one broken listener never stops the others
        this.log?.debug({ err, signal: name }, 'signal listener failed');
      }
    }
  }

  /** Topics with per-topic listeners on this node (WebSocket subscriptions, long-poll waiters). */
  listenedTopics(): string[] {
    return [...this.topics.keys()];
  }

  /** Call a listener; its failure is reported, and delivery to the others goes on. */
  private safeCall(fn: StateListener, state: FlowState): void {
    try {
      fn(state);
    } catch (err) {
      this.log?.debug({ err, topic: state.topic }, 'state listener failed');
    }
  }

  /** Number of per-topic listeners (WebSocket subscriptions and long-poll waiters). */
  listenerCount(): number {
    let n = 0;
    for (const set of this.topics.values()) n += set.size;
    return n;
  }
}
