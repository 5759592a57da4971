import { randomBytes } from 'node:crypto';
import type { FlowState } from '@handoff/protocol';
import type { Logger } from 'pino';
import { HandoffError } from '../errors.js';
import type { RedisKeys } from '../store/keys.js';
import type { RedisClient } from '../store/redis-connection.js';
import { Fanout } from './fanout.js';
import type { SignalPayload, TopicHub, TopicSubscriptions } from './topic-hub.js';

/** The Redis commands the sharded fan-out publishes with (a Redis or a Cluster connection). */
type Publisher = Pick<RedisClient, 'spublish' | 'publish'>;

/** Longest a subscribe waits for Redis to acknowledge the topic's SSUBSCRIBE before answering 503, ms. */
export const SUBSCRIBE_ACK_TIMEOUT_MS = 2_000;

/** Longest the re-subscribe after a reconnect waits for Redis's acknowledgements before the resync reads anyway, ms. */
export const RESUBSCRIBE_WAIT_MS = 5_000;

/** How long a topic's channel stays subscribed after its last local subscriber left (a quick re-subscribe keeps it), ms. */
export const UNSUBSCRIBE_LINGER_MS = 1_000;

/**
 * FANOUT=sharded: each committed state is SPUBLISHed on its topic's own channel
 * (`keys.topicChannel(topic)`, payload `[state, committedAt, origin]`), which only nodes with a local
 * subscriber of that topic SSUBSCRIBE to: a node's receive work follows its own subscribers, not
 * the fleet. Signals (rare) are PUBLISHed on one broadcast channel every API node subscribes.
 * API nodes and worker processes publish alike.
 */
export class ShardedFanout extends Fanout {
  /** This process's id on the channels: a node drops its own messages (it delivered them locally already). */
  readonly origin = randomBytes(9).toString('base64url');

  constructor(
    hub: TopicHub,
    private readonly pub: Publisher,
    private readonly keys: Pick<RedisKeys, 'topicChannel' | 'signalChannel'>,
    private readonly warnLog: Pick<Logger, 'debug' | 'warn'>,
  ) {
    super(hub, warnLog);
  }

  protected doPublish(state: FlowState, committedAt: number | undefined): void {
    // The publisher has an offline queue and never gives up a command: a failure here is a closed connection.
    this.pub.spublish(this.keys.topicChannel(state.topic), JSON.stringify([state, committedAt ?? null, this.origin])).catch((err: Error) => {
      this.warnLog.warn({ err: err.message, topic: state.topic }, 'fan-out publish failed');
    });
  }

  protected doSignal(name: string, payload: SignalPayload): void {
    this.pub.publish(this.keys.signalChannel(), JSON.stringify([name, payload])).catch((err: Error) => {
      this.warnLog.warn({ err: err.message, signal: name }, 'fan-out signal failed');
    });
  }
}

/** The subscriber side of the sharded fan-out on an API node. */
export interface ShardedReceiver extends TopicSubscriptions {
  /** Channels subscribed (or being subscribed) now, by topic. */
  subscribedTopics(): string[];
  /** Stop: cancel pending unsubscribes and stop listening (the connection is closed by the backend). */
  close(): void;
}

/**
 * The subscription manager of an API node (FANOUT=sharded), driven by the TopicHub: SSUBSCRIBE a
 * topic's channel when the topic gets its first local subscriber, SUNSUBSCRIBE it a little after
 * the last one left; hand every message received to `fanout.receive`. After a reconnect the
 * connection re-subscribes by itself (ioredis autoResubscribe, and the Cluster's sharded
 * subscribers), and the resync watcher re-pushes every watched topic.
 */
export function attachShardedReceiver(opts: {
  hub: TopicHub;
  fanout: ShardedFanout;
  sub: RedisClient;
  keys: Pick<RedisKeys, 'topicChannel' | 'signalChannel'>;
  log: Pick<Logger, 'debug' | 'warn'>;
  /** Counted for each state message received (handoff_fanout_messages_received_total). */
  onMessage?: () => void;
  /** Default UNSUBSCRIBE_LINGER_MS. */
  lingerMs?: number;
  /** Default SUBSCRIBE_ACK_TIMEOUT_MS. */
  ackTimeoutMs?: number;
}): ShardedReceiver {
  const { hub, fanout, sub, keys, log } = opts;
  const lingerMs = opts.lingerMs ?? UNSUBSCRIBE_LINGER_MS;
  const ackTimeoutMs = opts.ackTimeoutMs ?? SUBSCRIBE_ACK_TIMEOUT_MS;
  /** Topics watched now. */
  const wanted = new Set<string>();
  /** Topics whose channel is subscribed: the SSUBSCRIBE's acknowledgement. */
  const subscribed = new Map<string, Promise<void>>();
  /** Deferred unsubscribes of topics no longer watched. */
  const lingering = new Map<string, NodeJS.Timeout>();
  let closed = false;

  const onSmessage = (_channel: string, message: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return log.warn('fan-out: a message that is not JSON was dropped');
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'object' || parsed[0] === null) return;
    if (parsed[2] === fanout.origin) return; // published here: delivered locally at publish time
    opts.onMessage?.();
    fanout.receive(parsed[0] as FlowState, parsed[1]);
  };
  const signalChannel = keys.signalChannel();
  const onMessage = (channel: string, message: string) => {
    if (channel !== signalChannel) return;
    try {
      const [name, payload] = JSON.parse(message) as [string, SignalPayload];
      if (typeof name === 'string' && payload && typeof payload === 'object') hub.signal(name, payload);
    } catch {
      log.warn('fan-out: a signal that is not JSON was dropped');
    }
  };
  sub.on('smessage', onSmessage);
  sub.on('message', onMessage);
  sub.subscribe(signalChannel).catch((err: Error) => log.warn({ err: err.message }, 'fan-out: SUBSCRIBE of the signal channel failed'));

  function subscribe(topic: string): Promise<void> {
    const ack = sub.ssubscribe(keys.topicChannel(topic)).then(() => undefined);
    ack.catch((err: Error) => {
      // Next watch (or ready) tries again; the topic's subscribers are told 503 by `ready`.
      if (subscribed.get(topic) === ack) subscribed.delete(topic);
      log.warn({ err: err.message, topic }, 'fan-out: SSUBSCRIBE failed');
    });
    subscribed.set(topic, ack);
    return ack;
  }

  function unsubscribe(topic: string): void {
    lingering.delete(topic);
    if (wanted.has(topic) || !subscribed.has(topic) || closed) return;
    subscribed.delete(topic);
    sub.sunsubscribe(keys.topicChannel(topic)).catch((err: Error) => log.debug({ err: err.message, topic }, 'fan-out: SUNSUBSCRIBE failed'));
  }

  return {
    watch(topic) {
      if (closed) return;
      wanted.add(topic);
      const timer = lingering.get(topic);
      if (timer) {
        clearTimeout(timer);
        lingering.delete(topic);
      }
      // Commands on the channel's connection run in order: a SUNSUBSCRIBE sent before is undone by this.
      if (!subscribed.has(topic)) void subscribe(topic).catch(() => {});
    },
    unwatch(topic) {
      wanted.delete(topic);
      if (closed || lingering.has(topic)) return;
      if (lingerMs <= 0) return unsubscribe(topic);
      lingering.set(
        topic,
        setTimeout(() => unsubscribe(topic), lingerMs).unref(),
      );
    },
    async ready(topic) {
      if (closed || !wanted.has(topic)) return;
      const ack = subscribed.get(topic) ?? subscribe(topic);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          ack,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('SSUBSCRIBE not acknowledged in time')), ackTimeoutMs).unref();
          }),
        ]);
      } catch (err) {
        log.warn({ err: (err as Error).message, topic }, 'fan-out: subscribe not acknowledged');
        throw new HandoffError('unavailable', 'The realtime channel is unavailable; try again.');
      } finally {
        clearTimeout(timer);
      }
    },
    async resubscribe() {
      // ioredis re-subscribes by itself after a reconnect, but does not wait for the
      // acknowledgements before telling (a Cluster's `subscribersReady` comes right after the
      // SSUBSCRIBEs are sent), and a SSUBSCRIBE that failed while Redis was away is never sent
      // again. Sending them again (idempotent in Redis) and awaiting the replies closes both gaps.
      if (closed) return;
      const acks = [...wanted].map((topic) => subscribe(topic));
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        Promise.allSettled(acks).then((all) => all.filter((r) => r.status === 'rejected').length),
        new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), RESUBSCRIBE_WAIT_MS).unref())),
      ]);
      clearTimeout(timer);
      if (outcome === 'late') log.warn({ topics: acks.length }, 'fan-out: re-subscribe not acknowledged in time; resyncing anyway');
      else if (outcome > 0) log.warn({ topics: acks.length, failed: outcome }, 'fan-out: re-subscribe failed for some topics');
    },
    subscribedTopics: () => [...subscribed.keys()],
    close() {
      closed = true;
      for (const timer of lingering.values()) clearTimeout(timer);
      lingering.clear();
      sub.off('smessage', onSmessage);
      sub.off('message', onMessage);
    },
  };
}
