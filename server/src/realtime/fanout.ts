import type { FlowState } from '@handoff/protocol';
import type { TopicHub } from './topic-hub.js';

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

  /** Send the state to the other nodes. */
  protected abstract doPublish(state: FlowState): void;
}

/** Embedded mode: one process, nothing to send. */
export class LocalFanout extends Fanout {
  protected doPublish(): void {}
}

/** Event name used on the Socket.IO Redis adapter's server-side channel. */
export const FANOUT_EVENT = 'handoff:state';

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
}
