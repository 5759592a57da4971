import type { FlowState } from '@handoff/protocol';
import type { Logger } from 'pino';

/** Receives a state pushed to this node. */
export type StateListener = (state: FlowState) => void;

/** A small JSON payload of a signal between nodes. */
export type SignalPayload = Record<string, string | number | boolean>;
export type SignalListener = (payload: SignalPayload) => void;

/**
 * Told when this node starts and stops watching a topic (its first local subscriber came, its
 * last one left): the sharded fan-out subscribes to the topic's channel only while it is watched.
 */
export interface TopicSubscriptions {
  /** The topic has its first local subscriber: start receiving its states. */
  watch(topic: string): void;
  /** The topic's last local subscriber left: stop receiving its states (may be deferred). */
  unwatch(topic: string): void;
  /** Resolves once states of a watched topic published from now on reach this node; rejects when Redis cannot confirm it. */
  ready(topic: string): Promise<void>;
  /**
   * After the connection to Redis came back: subscribe every watched topic's channel again and
   * resolve once Redis acknowledged them all (or the wait is over; failures are logged). Resolves,
   * never rejects.
   */
  resubscribe(): Promise<void>;
}

/**
 * This node's local delivery point: every state that reaches the node (from its own transitions or
 * from another node through Redis) is handed to `deliver`, which gives it to every transport sink
 * (Socket.IO rooms) and to per-topic listeners (plain WebSocket clients, long-poll waiters).
 */
export class TopicHub {
  private readonly topics = new Map<string, Set<StateListener>>();
  private readonly sinks = new Set<StateListener>();
  private readonly signals = new Map<string, Set<SignalListener>>();
  /** Local subscribers per watched topic: per-topic listeners plus retained ones (Socket.IO rooms). */
  private readonly interest = new Map<string, number>();
  private subscriptions: TopicSubscriptions | null = null;

  constructor(
    /** Where a listener's failure is reported (debug): it is its transport's problem, never the others'. */
    private readonly log?: Pick<Logger, 'debug'>,
  ) {}

  /** Listen for states of one topic; returns the off-function. */
  listen(topic: string, listener: StateListener): () => void {
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(listener);
    this.retain(topic);
    let off = false;
    return () => {
      if (off) return;
      off = true;
      const current = this.topics.get(topic);
      if (current) {
        current.delete(listener);
        if (current.size === 0) this.topics.delete(topic);
      }
      this.release(topic);
    };
  }

  /** Route the start and end of this node's interest in each topic to `subscriptions` (the sharded fan-out). */
  setSubscriptions(subscriptions: TopicSubscriptions): void {
    this.subscriptions = subscriptions;
    for (const topic of this.interest.keys()) subscriptions.watch(topic);
  }

  /** One more local subscriber of `topic` that is not a listener (a Socket.IO room's first socket). */
  retain(topic: string): void {
    const n = this.interest.get(topic) ?? 0;
    this.interest.set(topic, n + 1);
    if (n === 0) this.subscriptions?.watch(topic);
  }

  /** One local subscriber of `topic` fewer (the pair of `retain`). */
  release(topic: string): void {
    const n = this.interest.get(topic);
    if (n === undefined) return;
    if (n > 1) return void this.interest.set(topic, n - 1);
    this.interest.delete(topic);
    this.subscriptions?.unwatch(topic);
  }

  /**
   * Resolves once a state of `topic` published from now on is delivered here (with the sharded
   * fan-out: the topic's channel is subscribed). Await it after joining and before reading a
   * snapshot, so no transition falls between the two. Immediate without a subscription manager.
   */
  ready(topic: string): Promise<void> {
    return this.subscriptions?.ready(topic) ?? Promise.resolve();
  }

  /**
   * After a reconnect to Redis: resolves once every watched topic's channel is subscribed again
   * (the resync reads states only after that, so no transition falls in between). Immediate
   * without a subscription manager.
   */
  resubscribe(): Promise<void> {
    return this.subscriptions?.resubscribe() ?? Promise.resolve();
  }

  /** Topics with at least one local subscriber (any transport). */
  watchedTopics(): string[] {
    return [...this.interest.keys()];
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
