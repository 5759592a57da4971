import {
  INITIAL_STATE,
  allowedFrom,
  isFinalState,
  parseTopic,
  type FlowKind,
  type FlowState,
  type FlowStateName,
} from '@handoff/protocol';
import type { Logger } from 'pino';
import { HandoffError } from '../errors.js';
import type { Fanout } from '../realtime/fanout.js';
import type { TopicHub } from '../realtime/topic-hub.js';
import type { FlowCap, FlowPatch, FlowRecord } from './flow-record.js';
import type { FlowStore } from './flow-store.js';
import { toFlowState } from './flow-state.js';
import { randomToken } from '../lib/random-token.js';
import { hashWatchToken, watchTokenMatches } from './watch-token.js';
import { groupShard, mintFlowIdInShard } from '../store/keys.js';

/** Who is reading or acting on a flow. */
export interface Access {
  /** The `Watch-Token` presented, if any. */
  watchToken?: string;
  /** The authenticated user (Bearer JWT / socket auth), if any. */
  userId?: string;
}

export interface FlowServiceOptions {
  /** How long a finished flow stays readable, ms. */
  tombstoneMs: number;
  /** Current time, ms (tests may pin it). */
  clock?: () => number;
  /** Adds what is computed at read time (a login's queue position); default: nothing. */
  decorate?: StateDecorator;
  /** Where an observer's failure is reported (debug); default: nowhere. */
  log?: Pick<Logger, 'debug'>;
}

/** Adds what is computed at read time (a login's queue position) to a state object. */
export type StateDecorator = (record: FlowRecord, state: FlowState) => Promise<FlowState>;

/** Told about every transition this process committed (the CAS winner), exactly once each. */
export type CommitListener = (record: FlowRecord, state: FlowState) => void;

/**
 * Flows for every kind: create, read with access checks, compare-and-set transitions that
 * publish on success, expiry, and long-poll waits. Kind-specific rules live in qr/ and login/.
 */
export class FlowService {
  private readonly clock: () => number;
  private readonly decorator: StateDecorator;
  private readonly commitListeners = new Set<CommitListener>();
  private readonly createListeners = new Set<(record: FlowRecord) => void>();

  constructor(
    private readonly store: FlowStore,
    private readonly fanout: Fanout,
    private readonly hub: TopicHub,
    private readonly opts: FlowServiceOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
    this.decorator = opts.decorate ?? (async (_record, state) => state);
  }

  /** Observe the transitions this process commits (webhooks, metrics); returns the off-function. */
  onCommit(listener: CommitListener): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /** Observe the flows this process creates (metrics); returns the off-function. */
  onCreate(listener: (record: FlowRecord) => void): () => void {
    this.createListeners.add(listener);
    return () => this.createListeners.delete(listener);
  }

  /** Publish a committed record to every node and tell the local observers. */
  private async committed(record: FlowRecord): Promise<void> {
    const committedAt = Date.now();
    const state = await this.stateOf(record);
    this.fanout.publish(state, committedAt);
    for (const listener of this.commitListeners) {
      try {
        listener(record, state);
      } catch (err) {
        // An observer's failure never undoes or hides a committed transition.
        this.opts.log?.debug({ err, topic: state.topic }, 'commit observer failed');
      }
    }
  }

  /**
   * A caller found the flow already in the state it asked for (a 409, `already_redeemed`): most
   * often its own earlier request committed and the answer was lost (a Redis failover, a dropped
   * connection), and the publish that followed that commit may have been lost with it. The caller
   * is told the state, so the subscribers are told it too: clients drop a version they have
   * (the version rule), one that missed it gets it now. A 409 for another state publishes nothing.
   */
  private republish(state: FlowState): void {
    this.fanout.republish(state);
  }

  /** Create a flow in its initial state; the watch token is returned here once and never stored. */
  async create(
    kind: FlowKind,
    ttlMs: number,
    fields: Partial<Pick<FlowRecord, 'requester' | 'context' | 'userId' | 'seq'>> = {},
  ): Promise<{ record: FlowRecord; watchToken: string }> {
    const { record, watchToken } = this.newRecord(kind, ttlMs, fields);
    await this.store.create(record, this.opts.tombstoneMs);
    for (const listener of this.createListeners) listener(record);
    return { record, watchToken };
  }

  /**
   * Create a flow only if `cap.group` holds fewer than `cap.max` live flows (atomic in the store);
   * null when it is full. Push-to-approve's APPROVALS_PER_USER.
   */
  async createCapped(
    kind: FlowKind,
    ttlMs: number,
    fields: Partial<Pick<FlowRecord, 'requester' | 'context' | 'userId' | 'number' | 'choices'>>,
    cap: FlowCap,
  ): Promise<{ record: FlowRecord; watchToken: string } | null> {
    // Minted into the group's shard: the group and its flows share one Redis Cluster slot.
    const { record, watchToken } = this.newRecord(kind, ttlMs, { ...fields, id: mintFlowIdInShard(groupShard(cap.group)) });
    if (!(await this.store.createCapped(record, this.opts.tombstoneMs, cap))) return null;
    for (const listener of this.createListeners) listener(record);
    return { record, watchToken };
  }

  /** Ids of a group's live flows (see createCapped), now. */
  liveInGroup(group: string): Promise<string[]> {
    return this.store.liveInGroup(group, this.clock());
  }

  private newRecord(kind: FlowKind, ttlMs: number, fields: Partial<FlowRecord>): { record: FlowRecord; watchToken: string } {
    // `fields.id`, when given, replaces the random id (createCapped mints one into a shard).
    const now = this.clock();
    const watchToken = randomToken();
    const record: FlowRecord = {
      kind,
      id: randomToken(),
      state: INITIAL_STATE[kind],
      version: 1,
      createdAt: now,
      expiresAt: now + ttlMs,
      watchTokenHash: hashWatchToken(watchToken),
      ...fields,
    };
    return { record, watchToken };
  }

  /** The public state of a record, with computed fields. */
  async stateOf(record: FlowRecord): Promise<FlowState> {
    return this.decorator(record, toFlowState(record));
  }

  /**
   * The current state of a topic as the server sees it (expiry applied), without access checks,
   * or null when it names no flow (any more). For resyncs: the state goes only to subscribers
   * whose access was checked when they subscribed.
   */
  async readState(topic: string): Promise<FlowState | null> {
    try {
      const { kind, id } = this.parseTopic(topic);
      return await this.stateOf(await this.load(kind, id));
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'not_found') return null;
      throw err;
    }
  }

  /** Parse a topic or throw `not_found` (a malformed topic names no flow). */
  parseTopic(topic: unknown): { kind: FlowKind; id: string } {
    const parsed = parseTopic(typeof topic === 'string' ? safeDecode(topic) : topic);
    if (!parsed) throw new HandoffError('not_found');
    return parsed;
  }

  /**
   * The current record, expired at once if its time has passed (so readers never see a stale
   * live state); throws `not_found` when unknown or forgotten.
   */
  async load(kind: FlowKind, id: string): Promise<FlowRecord> {
    const record = await this.store.get(kind, id);
    if (!record) throw new HandoffError('not_found');
    if (!isFinalState(record.state) && record.expiresAt <= this.clock()) return this.expire(kind, id);
    return record;
  }

  /** Throw `invalid_watch_token` unless `access` may watch this flow. */
  authorize(record: FlowRecord, access: Access): void {
    if (access.watchToken !== undefined && watchTokenMatches(access.watchToken, record.watchTokenHash)) return;
    // The phone that scanned a qr flow may watch it without the watch token (contract §3).
    if (access.watchToken === undefined && record.kind === 'qr' && access.userId && record.userId === access.userId) return;
    throw new HandoffError('invalid_watch_token');
  }

  /** Read a flow's state for someone allowed to watch it. */
  async read(topic: unknown, access: Access): Promise<FlowState> {
    const { kind, id } = this.parseTopic(topic);
    const record = await this.load(kind, id);
    this.authorize(record, access);
    return this.stateOf(record);
  }

  /**
   * Long-poll: answer as soon as the flow's version is above `after`, else after `waitMs` with
   * the current state. The listener is registered before the first read, so no push is missed.
   */
  async waitForChange(topic: unknown, access: Access, after: number, waitMs: number, signal?: AbortSignal): Promise<FlowState> {
    const { kind, id } = this.parseTopic(topic);
    let wake: () => void = () => {};
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const off = this.hub.listen(`${kind}:${id}`, (state) => {
      if (state.version > after) wake();
    });
    const timer = setTimeout(wake, waitMs);
    const onAbort = () => wake();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) wake(); // e.g. the server began draining before this request arrived
    try {
      // The topic's channel subscribed (FANOUT=sharded) before the first read: no push falls between.
      await this.hub.ready(`${kind}:${id}`);
      const first = await this.read(topic, access);
      if (first.version > after || isFinalState(first.state) || waitMs <= 0) return first;
      await woken;
      return await this.read(topic, access);
    } finally {
      off();
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Move a flow to `to` by compare-and-set and publish the new state. Failures map to the
   * catalogue: unknown → not_found, wrong state → invalid_transition (with the current state),
   * wrong user → not_scanner, past expiry → the flow is expired now and invalid_transition.
   */
  async transition(
    kind: FlowKind,
    id: string,
    to: FlowStateName,
    opts: { from?: readonly FlowStateName[]; patch?: FlowPatch; requireUserId?: string } = {},
  ): Promise<FlowRecord> {
    const result = await this.store.transition({
      kind,
      id,
      to,
      from: opts.from ?? allowedFrom(kind, to),
      now: this.clock(),
      patch: opts.patch,
      requireUserId: opts.requireUserId,
      tombstoneMs: this.opts.tombstoneMs,
    });
    if (result.ok) {
      await this.committed(result.record);
      return result.record;
    }
    switch (result.reason) {
      case 'not_found':
        throw new HandoffError('not_found');
      case 'not_user':
        throw new HandoffError('not_scanner');
      case 'expired_due': {
        const expired = await this.expire(kind, id);
        throw new HandoffError('invalid_transition', 'The flow has expired.', { state: await this.stateOf(expired) });
      }
      case 'invalid_transition': {
        const state = await this.stateOf(result.record);
        // Already in the state asked for: the signature of a retry whose first attempt committed.
        if (result.record.state === to) this.republish(state);
        throw new HandoffError('invalid_transition', `The flow is ${result.record.state}.`, { state });
      }
    }
  }

  /** Expire a flow whose time has passed; returns its record whoever won the race. */
  async expire(kind: FlowKind, id: string): Promise<FlowRecord> {
    const result = await this.store.transition({
      kind,
      id,
      to: 'expired',
      from: allowedFrom(kind, 'expired'),
      now: this.clock(),
      tombstoneMs: this.opts.tombstoneMs,
    });
    if (result.ok) {
      await this.committed(result.record);
      return result.record;
    }
    if (result.reason === 'not_found') throw new HandoffError('not_found');
    return result.record;
  }

  /** Expire every due flow (called by the sweeper on every node; the CAS picks one winner each). */
  async expireDue(limit = 200): Promise<void> {
    for (const { kind, id } of await this.store.dueForExpiry(this.clock(), limit)) {
      await this.expire(kind, id).catch(() => {
        // Forgotten in between: nothing to push.
      });
    }
  }

  /**
   * Exchange the watch token for the session, once (contract §1, Redeeming): confirmed/succeeded/approved
   * → redeemed by compare-and-set, so of two racing redeems exactly one gets the session.
   */
  async redeem<T>(topic: unknown, watchToken: string | undefined, issue: (record: FlowRecord) => Promise<T>): Promise<T> {
    const { kind, id } = this.parseTopic(topic);
    const record = await this.load(kind, id);
    if (watchToken === undefined || !watchTokenMatches(watchToken, record.watchTokenHash)) {
      throw new HandoffError('invalid_watch_token');
    }
    if (record.state === 'redeemed') {
      this.republish(await this.stateOf(record));
      throw new HandoffError('already_redeemed');
    }
    try {
      // Mint the session before the compare-and-set: once the flow is `redeemed` nothing may fail
      // before the session is handed out (a store error there would burn it for good). A session
      // minted for a CAS that then loses is never shown to anyone.
      const ready = record.state === 'confirmed' || record.state === 'succeeded' || record.state === 'approved';
      const session = ready && record.userId ? await issue(record) : null;
      const redeemed = await this.transition(kind, id, 'redeemed');
      return session ?? (await issue(redeemed));
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'invalid_transition' && err.extra.state?.state === 'redeemed') {
        throw new HandoffError('already_redeemed');
      }
      throw err;
    }
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
