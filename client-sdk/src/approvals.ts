import { USER_TOPIC, type FlowState, type Topic } from '@handoff/protocol';
import { SUBSCRIPTION_CODES, type SubscriptionCode } from './codes.js';
import type { Connection } from './connection.js';
import { Emitter, type Listener, type Unsubscribe } from './emitter.js';
import { HandoffError, isTemporary, toHandoffError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { Scope } from './scope.js';
import { isNewer, SubscriptionStatus, type SubscriptionEvent, type SubscriptionState } from './subscription.js';
import { expectShape, isEnded, parseApprovalRequest, parseFlowState, retryDelay, type WaitOptions } from './utils.js';
import type { ApprovalRequest } from './utils.js';

/** Events of `handoff.approvals` (phone side). */
export interface ApprovalsEvents {
  /**
   * A pending sign-in request for this user: who asks (`requester`), the app backend's `context`,
   * and the three `choices`. Emitted once per request and version, also for the ones pending when
   * the phone (re)subscribes.
   */
  request: ApprovalRequest;
  /**
   * Every newer state of one of the user's approvals (pending ones too): `approved`, `denied`,
   * `cancelled` (the browser withdrew it), `expired`, `redeemed`. Take it off the screen when it is
   * no longer `pending`; another phone of the same user may have answered it.
   */
  state: ApprovalRequest;
  /**
   * A request that was pending is no longer, and how it ended is not known: it ended while the link
   * was down (the snapshot after the reconnect no longer lists it). Take it off the screen.
   */
  gone: { id: string; topic: Topic };
  /** The user channel's subscription changed (`unsubscribed | subscribing | subscribed`), with `{code, reason}`. */
  subscription: SubscriptionEvent;
}

/** How approvals carry out an app action: socket ack when connected, else HTTP. Internal. */
export type AppAction = (
  event: string,
  payload: Record<string, unknown>,
  path: string,
  body: Record<string, unknown> | undefined,
  opts: WaitOptions,
) => Promise<{ state: unknown }>;

/** How many ended approvals are remembered, so that a late duplicate push is not taken for new. */
const ENDED_MEMORY = 256;

/**
 * Push-to-approve, phone side (`handoff.approvals`, with the app's JWT): the user channel
 * `user:me`. While a `request` or `state` listener is registered it keeps the realtime link open,
 * subscribes on the authenticated socket, and subscribes again after every reconnect (the
 * snapshot brings the requests made meanwhile). The user channel needs the socket: in the
 * long-poll fallback no request arrives until the socket is back.
 *
 * ```ts
 * handoff.approvals.on('request', (req) => showPrompt(req)); // req.choices: three numbers
 * await handoff.approvals.approve(req.id, picked);           // a wrong number denies it
 * ```
 */
export class Approvals {
  private readonly emitter = new Emitter<ApprovalsEvents>();
  private readonly status = new SubscriptionStatus((e) => this.emitter.emit('subscription', e));
  /** The last state of every approval taken, by id; the ended ones are dropped (see `ended`). */
  private readonly known = new Map<string, ApprovalRequest>();
  /** Ids of ended approvals with their last version, oldest first. */
  private readonly ended = new Map<string, number>();
  /** Lives while subscribed or subscribing. */
  private scope: Scope | null = null;
  /** The current subscribe attempt. */
  private mode: Scope | null = null;

  /** @internal Use `handoff.approvals`. */
  constructor(
    private readonly deps: { connection: Connection; options: ResolvedOptions; scope: Scope; act: AppAction },
  ) {}

  /** The user channel's state: `subscribed` while requests arrive live. */
  get subscriptionState(): SubscriptionState {
    return this.status.state;
  }

  /** The requests pending now, oldest first. */
  get pending(): ApprovalRequest[] {
    return [...this.known.values()].filter((r) => r.state === 'pending');
  }

  /**
   * Listen to `request`, `state`, `gone` or `subscription`; returns the off-function. The first
   * `request` or `state` listener starts the user channel; removing the last one stops it.
   */
  on<K extends keyof ApprovalsEvents>(event: K, fn: Listener<ApprovalsEvents[K]>): Unsubscribe {
    const off = this.emitter.on(event, fn);
    if (event === 'request' || event === 'state') this.start();
    return () => {
      off();
      this.maybeStop();
    };
  }

  /** Remove a listener added with `on`. */
  off<K extends keyof ApprovalsEvents>(event: K, fn: Listener<ApprovalsEvents[K]>): void {
    this.emitter.off(event, fn);
    this.maybeStop();
  }

  /**
   * Approve request `id` with the number the user picked (`approval:approve` over the socket when
   * connected, else `POST /v1/approvals/{id}/approve`); resolves with the `approved` state. A wrong
   * number rejects with `wrong_number`, and the request is denied. Also `invalid_transition`
   * (answered already, cancelled, expired: `error.state`), `not_found`, `unauthorized`.
   */
  async approve(id: string, number: number, opts: WaitOptions = {}): Promise<FlowState> {
    if (!Number.isInteger(number) || number < 0 || number > 99) throw new TypeError('Handoff: approve needs the 2-digit number the user picked');
    const res = await this.deps.act('approval:approve', { id, number }, `/v1/approvals/${encodeURIComponent(id)}/approve`, { number }, opts);
    return this.took(expectShape(parseFlowState(res.state), 'flow state'));
  }

  /** Deny request `id` (`approval:deny`, else `POST /v1/approvals/{id}/deny`); resolves with the `denied` state. */
  async deny(id: string, opts: WaitOptions = {}): Promise<FlowState> {
    const res = await this.deps.act('approval:deny', { id }, `/v1/approvals/${encodeURIComponent(id)}/deny`, undefined, opts);
    return this.took(expectShape(parseFlowState(res.state), 'flow state'));
  }

  /** The state an action answered: when it ends a known request, emit it as that request's new state. */
  private took(state: FlowState): FlowState {
    const last = this.known.get(state.id);
    if (last && isNewer(last, state)) this.deliver({ ...state, requester: last.requester, choices: last.choices, ...(last.context ? { context: last.context } : {}) });
    return state;
  }

  private start(): void {
    if (this.scope || this.deps.scope.disposed) return;
    const scope = this.deps.scope.child();
    this.scope = scope;
    const { connection } = this.deps;
    this.status.set('subscribing', SUBSCRIPTION_CODES.subscribe, 'a request listener was added');
    scope.add(connection.events.on('approval', (req) => {
      if (this.status.state === 'subscribed') this.deliver(req);
    }));
    scope.add(connection.events.on('transport', (e) => {
      if (e.oldState !== e.newState) this.sync();
    }));
    scope.add(connection.acquire());
    scope.add(() => {
      if (this.scope === scope) this.end(SUBSCRIPTION_CODES.closed, 'the client was closed');
    });
    this.sync();
  }

  private maybeStop(): void {
    if (this.scope && this.emitter.listenerCount('request') + this.emitter.listenerCount('state') === 0) {
      this.end(SUBSCRIPTION_CODES.closed, 'no request listener left');
    }
  }

  /** Subscribe again whenever the socket (re)connects; wait while it is down. */
  private sync(): void {
    const scope = this.scope;
    if (!scope) return;
    this.mode?.dispose();
    this.mode = null;
    if (this.status.state === 'subscribed') {
      this.status.set('subscribing', SUBSCRIPTION_CODES.transportChanged, `the transport is ${this.deps.connection.state}`);
    }
    if (this.deps.connection.state !== 'connected' || scope.disposed) return;
    const mode = scope.child();
    this.mode = mode;
    this.subscribe(mode, 0);
  }

  private subscribe(mode: Scope, attempt: number): void {
    const { connection, options } = this.deps;
    connection.request('subscribe', { topic: USER_TOPIC }, options.requestTimeout).then(
      (res) => {
        if (mode.disposed) return;
        // The ack's state is the channel's snapshot: {topic: 'user:me', approvals: […]}.
        const raw = (res as { state?: { approvals?: unknown } }).state?.approvals;
        if (!Array.isArray(raw)) throw new HandoffError('bad_response', 'Unexpected user channel snapshot.');
        const snapshot = raw.map(parseApprovalRequest).filter((r): r is ApprovalRequest => r !== null);
        this.status.set('subscribed', SUBSCRIPTION_CODES.subscribed, 'socket snapshot');
        if (mode.disposed) return;
        const listed = new Set(snapshot.map((r) => r.id));
        for (const [id, last] of [...this.known]) {
          if (listed.has(id)) continue;
          this.known.delete(id);
          this.remember(id, last.version);
          this.emitter.emit('gone', { id, topic: last.topic });
        }
        for (const req of snapshot) this.deliver(req);
      },
      (err: unknown) => {
        if (mode.disposed) return;
        const error = toHandoffError(err);
        if (!isTemporary(error)) return this.end(SUBSCRIPTION_CODES.failed, error.message, error);
        mode.timeout(() => this.subscribe(mode, attempt + 1), retryDelay(error, attempt, options));
      },
    ).catch((err: unknown) => {
      // A malformed snapshot: try again later, as for any temporary error.
      if (!mode.disposed) mode.timeout(() => this.subscribe(mode, attempt + 1), retryDelay(toHandoffError(err), attempt, options));
    });
  }

  /** Take a state when it is newer than the one held (the version rule); emit `state`, and `request` while pending. */
  private deliver(req: ApprovalRequest): void {
    const endedAt = this.ended.get(req.id);
    if (endedAt !== undefined && req.version <= endedAt) return;
    if (!isNewer(this.known.get(req.id) ?? null, req)) return;
    if (isEnded(req.state)) {
      this.known.delete(req.id);
      this.remember(req.id, req.version);
    } else {
      this.known.set(req.id, req);
    }
    this.emitter.emit('state', req);
    if (req.state === 'pending') this.emitter.emit('request', req);
  }

  private remember(id: string, version: number): void {
    this.ended.delete(id);
    this.ended.set(id, version);
    if (this.ended.size > ENDED_MEMORY) this.ended.delete(this.ended.keys().next().value as string);
  }

  private end(code: SubscriptionCode, reason: string, error?: HandoffError): void {
    const scope = this.scope;
    if (!scope) return;
    this.scope = this.mode = null;
    if (this.status.state === 'subscribed') this.deps.connection.send('unsubscribe', { topic: USER_TOPIC });
    scope.dispose();
    this.status.set('unsubscribed', code, reason, error);
  }
}
