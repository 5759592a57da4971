import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { FlowState } from '@handoff/protocol';
import { toHandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import type { ShutdownSteps } from '../lib/shutdown.js';
import type { TopicHub } from './topic-hub.js';

/**
 * Reads what a subscriber of a topic should hold now: a flow topic's current state (none when it
 * names no flow any more), a user channel's live approvals (server.ts builds it from the services).
 */
export interface StateReader {
  readStates(topic: string): Promise<FlowState[]>;
}

/** Topics read from the store at once during a resync. */
const BATCH = 32;
/** Attempts of one resync before giving up (each fails fast while Redis is down). */
const MAX_ATTEMPTS = 40;

/**
 * Closes the gap Redis pub/sub leaves when a node's subscriber connection was down: a transition
 * committed elsewhere meanwhile was published to nobody on this node. When the subscriber is back
 * (and has re-subscribed), `run()` reads the current state of every topic this node has
 * subscribers for and delivers it to them. A client that already has that version drops it (the
 * version rule of docs/protocol.md); one that missed it gets it now, final states included, so
 * nobody waits on a dead QR code after a Redis restart. A state is read as the server sees it
 * (expiry applied), without access checks: it only goes to subscribers who were checked before.
 */
export class Resync {
  private generation = 0;
  private stopped = false;

  constructor(
    private readonly states: StateReader,
    private readonly hub: TopicHub,
    /** The topics this node has subscribers for (Socket.IO rooms, WebSocket and long-poll listeners). */
    private readonly topics: () => Iterable<string>,
    private readonly log: Logger,
    private readonly onOutcome: (outcome: 'completed' | 'failed') => void = () => {},
  ) {}

  /**
   * Re-push the current state of every subscribed topic; retried with backoff while the store is
   * unreachable. A newer `run()` (another reconnect) supersedes a running one.
   */
  async run(): Promise<void> {
    const generation = ++this.generation;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (this.stopped || generation !== this.generation) return;
      try {
        const count = await this.once(generation);
        if (count >= 0) {
          this.log.info({ topics: count }, 'redis subscriber back: subscribed topics resynced');
          this.onOutcome('completed');
        }
        return;
      } catch (err) {
        if (toHandoffError(err).code !== 'unavailable') {
          this.log.warn({ err: (err as Error).message }, 'resync failed');
          this.onOutcome('failed');
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2000)).unref());
      }
    }
    this.log.warn('resync gave up: the store stayed unreachable');
    this.onOutcome('failed');
  }

  /** Stop (server closing): a running resync ends at its next step. */
  stop(): void {
    this.stopped = true;
  }

  /** One pass; the number of topics, or -1 when superseded. Throws when the store fails. */
  private async once(generation: number): Promise<number> {
    const topics = [...new Set(this.topics())];
    for (let i = 0; i < topics.length; i += BATCH) {
      if (this.stopped || generation !== this.generation) return -1;
      const states = await Promise.all(topics.slice(i, i + BATCH).map((topic) => this.states.readStates(topic)));
      for (const state of states.flat()) this.hub.deliver(state);
    }
    return topics.length;
  }
}

/**
 * The resync watcher of an API node in Redis mode. Redis pub/sub stores nothing: when this node's
 * subscriber connection was down, transitions committed elsewhere meanwhile reached none of its
 * subscribers. Once it is back (autoResubscribe re-subscribed it; a PING on the same connection
 * answers after the SUBSCRIBEs), re-push the current state of every topic subscribed here. Stops
 * in the first steps of a graceful shutdown. Embedded mode loses nothing: no watcher.
 */
export const resyncPlugin = fp<{ handoff: Handoff; states: StateReader; topics: () => Iterable<string>; steps: ShutdownSteps }>(
  async (app, { handoff, states, topics, steps }) => {
    const { backend, hub, log, metrics } = handoff;
    if (!backend.redis) return;
    const sub = backend.redis.sub;
    const resync = new Resync(states, hub, topics, log, (outcome) => metrics.resyncs.inc({ outcome }));
    let lost = false;
    const onClose = () => (lost = true);
    const onReady = () => {
      if (!lost || handoff.shuttingDown) return;
      lost = false;
      void sub
        .ping()
        .catch((err: Error) => log.debug({ err: err.message }, 'resync: PING after resubscribe failed; resyncing anyway'))
        .then(() => hub.resubscribe())
        .then(() => resync.run());
    };
    sub.on('close', onClose);
    sub.on('ready', onReady);
    // Redis Cluster: a sharded subscriber (one per master) lost is replaced, and re-subscribes its
    // channels, without the cluster connection closing; resync once they are all back.
    // ioredis sends the SSUBSCRIBEs again but emits `subscribersReady` without awaiting them:
    // `hub.resubscribe()` does, before the resync reads.
    const onShardLost = () => (lost = true);
    const onShardsReady = () => {
      if (!lost || handoff.shuttingDown) return;
      lost = false;
      void hub.resubscribe().then(() => resync.run());
    };
    sub.on('-subscriber', onShardLost);
    sub.on('subscribersReady', onShardsReady);
    app.addHook('preClose', () =>
      steps.run('stop resync', () => {
        resync.stop();
        sub.off('close', onClose);
        sub.off('ready', onReady);
        sub.off('-subscriber', onShardLost);
        sub.off('subscribersReady', onShardsReady);
      }),
    );
  },
  { name: 'handoff-resync' },
);
