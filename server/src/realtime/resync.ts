import type { Logger } from 'pino';
import type { FlowState } from '@handoff/protocol';
import { HandoffError, toHandoffError } from '../errors.js';
import type { FlowService } from '../flows/flow-service.js';
import type { TopicHub } from './topic-hub.js';

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
    private readonly flows: FlowService,
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
      const states = await Promise.all(topics.slice(i, i + BATCH).map((topic) => this.current(topic)));
      for (const state of states) if (state) this.hub.deliver(state);
    }
    return topics.length;
  }

  /** The current state of a topic, or null when it names no flow any more. */
  private async current(topic: string): Promise<FlowState | null> {
    try {
      const { kind, id } = this.flows.parseTopic(topic);
      return await this.flows.stateOf(await this.flows.load(kind, id));
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'not_found') return null;
      throw err;
    }
  }
}
