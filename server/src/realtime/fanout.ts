import type { FlowState } from '@handoff/protocol';
import type { SignalPayload, TopicHub } from './topic-hub.js';

/**
 * The one fan-out path: a committed transition is published here, and reaches the TopicHub of
 * every node. The seam is `doPublish` (as in socket.io-adapter's ClusterAdapter): the logic is the
 * same for every backend, only how a state leaves this process differs.
 */
export abstract class Fanout {
  constructor(protected readonly hub: TopicHub) {}

  /** Publish a committed state to every node, this one included. */
  publish(state: FlowState): void {
    this.hub.deliver(state);
    this.doPublish(state);
  }

  /** Publish a signal (e.g. "the login queue moved") to every node, this one included. */
  signal(name: string, payload: SignalPayload): void {
    this.hub.signal(name, payload);
    this.doSignal(name, payload);
  }

  /** Send the state to the other nodes. */
  protected abstract doPublish(state: FlowState): void;
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
 * (`serverSideEmit`), so API nodes (`io`) and worker processes (`@socket.io/redis-emitter`)
 * share one path. Receiving nodes hand them to their hub (see `listenForRemoteStates`).
 */
export class AdapterFanout extends Fanout {
  constructor(
    hub: TopicHub,
    private readonly emitter: ServerSideEmitter,
  ) {
    super(hub);
  }

  protected doPublish(state: FlowState): void {
    this.emitter.serverSideEmit(FANOUT_EVENT, state);
  }

  protected doSignal(name: string, payload: SignalPayload): void {
    this.emitter.serverSideEmit(SIGNAL_EVENT, name, payload);
  }
}
