import type { FlowState } from '@handoff/protocol';
import type { Logger } from 'pino';
import type { SignalPayload, TopicHub } from './topic-hub.js';

/** Where a delivered state was committed: on this node, or elsewhere (through Redis). */
export type DeliveryOrigin = 'local' | 'remote';

/** Told after each delivery to this node's hub: how long since the commit, ms. */
export type DeliveryObserver = (origin: DeliveryOrigin, latencyMs: number) => void;

/**
 * The one fan-out path: a committed transition is published here, and reaches the TopicHub of
 * every node. The seam is `doPublish` (as in socket.io-adapter's ClusterAdapter): the logic is the
 * same for every backend, only how a state leaves this process differs.
 *
 * The commit time travels beside the state (a second argument on the channel, never a field of
 * the public state object), so every node can measure commit → local delivery.
 */
export abstract class Fanout {
  private readonly observers = new Set<DeliveryObserver>();

  constructor(
    protected readonly hub: TopicHub,
    /** Where an observer's failure is reported (debug). */
    private readonly log?: Pick<Logger, 'debug'>,
  ) {}

  /** Publish a committed state to every node, this one included. `committedAt`: epoch ms of the commit. */
  publish(state: FlowState, committedAt: number = Date.now()): void {
    this.deliverLocal(state, committedAt, 'local');
    this.doPublish(state, committedAt);
  }

  /**
   * Publish again a state committed earlier, whose first publish may have been lost (its commit's
   * answer was lost in a failover, or its node died between commit and publish). Subscribers drop
   * a version they have (the version rule); no delivery latency is observed for it.
   */
  republish(state: FlowState): void {
    this.deliverLocal(state, undefined, 'local');
    this.doPublish(state, undefined);
  }

  /**
   * A state published by another process arrived (the adapter channel): deliver it here.
   * `committedAt` is absent when the sender predates it; then no latency is observed.
   */
  receive(state: FlowState, committedAt?: unknown): void {
    this.deliverLocal(state, typeof committedAt === 'number' && Number.isFinite(committedAt) ? committedAt : undefined, 'remote');
  }

  /** Observe deliveries to this node (metrics); returns the off-function. */
  onDelivered(observer: DeliveryObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  private deliverLocal(state: FlowState, committedAt: number | undefined, origin: DeliveryOrigin): void {
    this.hub.deliver(state);
    if (committedAt === undefined) return;
    // Clocks of different nodes may differ a little (NTP): never report a negative latency.
    const latency = Math.max(0, Date.now() - committedAt);
    for (const observer of this.observers) {
      try {
        observer(origin, latency);
      } catch (err) {
        // metrics never stop a delivery
        this.log?.debug({ err }, 'delivery observer failed');
      }
    }
  }

  /** Publish a signal (e.g. "the login queue moved") to every node, this one included. */
  signal(name: string, payload: SignalPayload): void {
    this.hub.signal(name, payload);
    this.doSignal(name, payload);
  }

  /** Send the state (and its commit time; none for a republish) to the other nodes. */
  protected abstract doPublish(state: FlowState, committedAt: number | undefined): void;
  /** Send a signal to the other nodes. */
  protected abstract doSignal(name: string, payload: SignalPayload): void;
}

/** Embedded mode: one process, nothing to send. */
export class LocalFanout extends Fanout {
  protected doPublish(): void {}
  protected doSignal(): void {}
}

/** Event name of states on the Socket.IO Redis adapter's server-side channel. */
export const FANOUT_EVENT = 'handoff:state';

/** Event name of signals on the same channel. */
export const SIGNAL_EVENT = 'handoff:signal';

/** Anything that can emit a server-side event to the other nodes (a Socket.IO Server or a redis emitter). */
export interface ServerSideEmitter {
  serverSideEmit(event: string, ...args: unknown[]): unknown;
}

/**
 * Redis mode: states travel over the Socket.IO Redis adapter's server-side channel
 * (`serverSideEmit(FANOUT_EVENT, state, committedAt)`), so API nodes (`io`) and worker processes
 * (`@socket.io/redis-emitter`) share one path. Receiving nodes hand them to `receive`.
 */
export class AdapterFanout extends Fanout {
  constructor(
    hub: TopicHub,
    private readonly emitter: ServerSideEmitter,
    log?: Pick<Logger, 'debug'>,
  ) {
    super(hub, log);
  }

  protected doPublish(state: FlowState, committedAt: number | undefined): void {
    this.emitter.serverSideEmit(FANOUT_EVENT, state, committedAt ?? null);
  }

  protected doSignal(name: string, payload: SignalPayload): void {
    this.emitter.serverSideEmit(SIGNAL_EVENT, name, payload);
  }
}
