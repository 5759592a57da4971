import type { FlowState, Session, Topic } from '@handoff/protocol';
import type { Connection } from './connection.js';
import { Emitter, type Listener, type Unsubscribe } from './emitter.js';
import { HandoffError, isTemporary, toHandoffError } from './errors.js';
import type { HttpClient } from './http.js';
import type { ResolvedOptions } from './options.js';
import type { Scope } from './scope.js';
import { FlowSubscription, type SubscriptionEvent, type SubscriptionState } from './subscription.js';
import { expectShape, parseFlowState, parseSession, raceWait, retryDelay, type WaitOptions } from './utils.js';

/** Events of a flow handle (`QrLogin`, `AsyncLogin`, `ApprovalLogin`). */
export interface FlowEvents {
  /**
   * The flow's state. A new listener first gets the current state (on a microtask), then every
   * newer one: `pending → scanned → confirmed → redeemed`, `queued → processing → …`, or
   * `pending → approved → redeemed`.
   */
  state: FlowState;
  /** The subscription's state changed (`unsubscribed | subscribing | subscribed`), with `{code, reason}`. */
  subscription: SubscriptionEvent;
}

/** What the client shares with its flow handles. Internal. */
export interface FlowContext {
  connection: Connection;
  http: HttpClient;
  options: ResolvedOptions;
  scope: Scope;
}

type Outcome = { ok: true; session: Session } | { ok: false; error: HandoffError };

/**
 * The `state` and `subscription` events of a watched flow, where a new `state` listener first gets
 * the current state (on a microtask, unless a newer one reached it first). Internal: `FlowHandle`
 * and `ScannedQr` listen through it.
 */
export class FlowEmitter {
  private readonly emitter = new Emitter<FlowEvents>();
  private readonly wrapped = new WeakMap<Listener<FlowState>, Listener<FlowState>>();

  constructor(private readonly current: () => FlowState | null) {}

  on<K extends keyof FlowEvents>(event: K, fn: Listener<FlowEvents[K]>): Unsubscribe {
    if (event !== 'state') return this.emitter.on(event, fn);
    const listener = fn as Listener<FlowState>;
    let seen = false;
    const wrapper: Listener<FlowState> = (state) => {
      seen = true;
      listener(state);
    };
    this.wrapped.set(listener, wrapper);
    const off = this.emitter.on('state', wrapper);
    queueMicrotask(() => {
      const current = this.current();
      if (!seen && current && this.wrapped.get(listener) === wrapper) wrapper(current);
    });
    return () => {
      off();
      if (this.wrapped.get(listener) === wrapper) this.wrapped.delete(listener);
    };
  }

  off<K extends keyof FlowEvents>(event: K, fn: Listener<FlowEvents[K]>): void {
    if (event !== 'state') return this.emitter.off(event, fn);
    const wrapper = this.wrapped.get(fn as Listener<FlowState>);
    if (wrapper) {
      this.emitter.off('state', wrapper);
      this.wrapped.delete(fn as Listener<FlowState>);
    }
  }

  emit<K extends keyof FlowEvents>(event: K, value: FlowEvents[K]): void {
    this.emitter.emit(event, value);
  }
}

/**
 * A flow its creator waits on. Watches the flow from creation (socket or long-poll), emits its
 * states, and on `session()` redeems it once it is confirmed / succeeded / approved. Shared by
 * `QrLogin`, `AsyncLogin` and `ApprovalLogin`.
 */
export abstract class FlowHandle {
  private readonly emitter = new FlowEmitter(() => this.state);
  private readonly scope: Scope;
  private readonly sub: FlowSubscription | null;
  /** Secret; an ES private field, so it never shows in `console.log(handle)`. */
  readonly #watchToken: string | undefined;
  private outcome: Outcome | null = null;
  private waiters: Set<(o: Outcome) => void> | null = null;
  private redeeming = false;

  /** @internal */
  protected constructor(
    private readonly ctx: FlowContext,
    flow: { topic: Topic; watchToken: string; initial: FlowState } | { session: Session },
  ) {
    this.scope = ctx.scope.child();
    if ('session' in flow) {
      this.sub = null;
      this.outcome = { ok: true, session: flow.session };
      this.scope.dispose();
      return;
    }
    this.#watchToken = flow.watchToken;
    const sub = new FlowSubscription(ctx, flow.topic, { watchToken: flow.watchToken }, flow.initial, this.scope);
    this.sub = sub;
    this.scope.add(sub.events.on('flow', (state) => this.onState(state)));
    this.scope.add(sub.events.on('subscription', (e) => this.onSubscription(e)));
    this.scope.add(() => sub.unsubscribe());
    this.onState(flow.initial);
    sub.subscribe();
  }

  /** The flow's current state; null only for an `AsyncLogin` the server completed at once. */
  get state(): FlowState | null {
    return this.sub?.flow ?? null;
  }

  /** The subscription's state: `subscribed` while live states arrive, `unsubscribed` once the flow ended. */
  get subscriptionState(): SubscriptionState {
    return this.sub?.state ?? 'unsubscribed';
  }

  /** Listen to `state` or `subscription`; returns the off-function. */
  on<K extends keyof FlowEvents>(event: K, fn: Listener<FlowEvents[K]>): Unsubscribe {
    return this.emitter.on(event, fn);
  }

  /** Remove a listener added with `on`. */
  off<K extends keyof FlowEvents>(event: K, fn: Listener<FlowEvents[K]>): void {
    this.emitter.off(event, fn);
  }

  /**
   * The session of this flow: resolves once the flow is confirmed (qr) / succeeded (login) /
   * approved (approval) AND redeemed by this handle (over the socket when connected, else
   * `POST /v1/flows/{topic}/session`).
   * Rejects with a HandoffError: `cancelled`, `expired`, `failed`, `denied` (the flow ended so),
   * `already_redeemed` (someone else redeemed it), a subscription error (`not_found`,
   * `invalid_watch_token`), `closed`; per call, `timeout` and `aborted` from `opts` (the flow
   * goes on). Every call shares the one outcome; the flow is redeemed at most once.
   */
  session(opts: WaitOptions = {}): Promise<Session> {
    if (this.outcome) return this.outcome.ok ? Promise.resolve(this.outcome.session) : Promise.reject(this.outcome.error);
    if (!this.waiters) {
      this.waiters = new Set();
      this.check();
      if (this.outcome) return this.session(opts);
    }
    const waiters = this.waiters;
    return raceWait<Session>(this.scope, opts, (settle) => {
      const waiter = (o: Outcome): void => settle(o.ok ? { ok: true, value: o.session } : { ok: false, error: o.error });
      waiters.add(waiter);
      return () => waiters.delete(waiter);
    });
  }

  /** A safe summary for logs and `JSON.stringify` (never the watch token). */
  toJSON(): { topic: string | null; state: FlowState | null; subscriptionState: SubscriptionState } {
    return { topic: this.sub?.topic ?? null, state: this.state, subscriptionState: this.subscriptionState };
  }

  /** Stop watching; a pending `session()` rejects with `closed`. Idempotent. */
  close(): void {
    if (!this.outcome) this.settle({ ok: false, error: new HandoffError('closed', 'The flow handle was closed.') });
    this.scope.dispose();
  }

  /**
   * @internal Cancel from the browser: `DELETE <path>` with the watch token; offers and resolves
   * with the `cancelled` state. Rejects with `invalid_transition` (and `error.state`) when too late.
   */
  protected async cancelAt(path: string, opts: WaitOptions): Promise<FlowState> {
    const { http, options } = this.ctx;
    const res = await http.request(
      'DELETE',
      path,
      { watchToken: this.#watchToken, signal: opts.signal, timeout: opts.timeout ?? options.requestTimeout },
      // The client's scope, not the flow's: the `cancelled` push may end the flow's lifetime before
      // this answer arrives, and must not abort the request that caused it.
      this.ctx.scope,
    );
    const state = expectShape(parseFlowState(res.body), 'flow state');
    this.offer(state);
    return state;
  }

  /** @internal Offer a state the SDK got from an HTTP answer of its own (e.g. a cancel). */
  protected offer(state: FlowState): void {
    this.sub?.deliver(state);
  }

  /** @internal */
  protected get context(): FlowContext {
    return this.ctx;
  }

  /** @internal */
  protected get secret(): string | undefined {
    return this.#watchToken;
  }

  /** @internal */
  protected get lifetime(): Scope {
    return this.scope;
  }

  private onState(state: FlowState): void {
    this.emitter.emit('state', state);
    this.check();
  }

  private onSubscription(e: SubscriptionEvent): void {
    this.emitter.emit('subscription', e);
    if (e.newState !== 'unsubscribed') return;
    if (e.error && !this.outcome && !this.redeeming) this.settle({ ok: false, error: e.error });
    this.check();
    this.maybeDone();
  }

  /** Decide the outcome from the current state; start the redeem when someone waits for it. */
  private check(): void {
    if (this.outcome) return;
    const state = this.state;
    if (!state) return;
    const terminal = terminalError(state);
    if (terminal) {
      if (state.state === 'redeemed' && this.redeeming) return; // our own redeem: its answer decides
      this.settle({ ok: false, error: terminal });
      return;
    }
    if (REDEEMABLE.has(state.state) && this.waiters) void this.redeem();
  }

  private async redeem(): Promise<void> {
    if (this.redeeming || this.outcome) return;
    this.redeeming = true;
    const { options } = this.ctx;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const session = await this.redeemOnce();
          this.settle({ ok: true, session });
          return;
        } catch (caught) {
          const err = toHandoffError(caught);
          if (this.scope.disposed || this.outcome) return;
          if (isTemporary(err) && attempt < options.redeemRetries) {
            await this.scope.sleep(retryDelay(err, attempt, options));
            if (this.scope.disposed || this.outcome) return;
            continue;
          }
          // A redeem that lost to the expiry says so with the flow's state.
          this.settle({ ok: false, error: (err.code === 'invalid_transition' && err.state && terminalError(err.state)) || err });
          return;
        }
      }
    } finally {
      this.redeeming = false;
      this.maybeDone();
    }
  }

  private async redeemOnce(): Promise<Session> {
    const { connection, http, options } = this.ctx;
    const topic = this.sub?.topic ?? '';
    const watchToken = this.#watchToken ?? '';
    if (connection.state === 'connected') {
      // Hold the link until the ack: the `redeemed` push may end the subscription first.
      const release = connection.acquire();
      try {
        const res = await connection.request('redeem', { topic, watchToken }, options.requestTimeout);
        return expectShape(parseSession(res.session), 'redeem ack');
      } finally {
        release();
      }
    }
    const res = await http.request(
      'POST',
      `/v1/flows/${encodeURIComponent(topic)}/session`,
      { watchToken, timeout: options.requestTimeout },
      this.scope,
    );
    return expectShape(parseSession(res.body), 'session');
  }

  private settle(outcome: Outcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    const waiters = [...(this.waiters ?? [])];
    this.waiters?.clear();
    for (const w of waiters) w(outcome);
    this.maybeDone();
  }

  /** Release the handle's resources once the flow has ended and nothing is in flight. */
  private maybeDone(): void {
    if (this.outcome && !this.redeeming && (this.sub?.state ?? 'unsubscribed') === 'unsubscribed') this.scope.dispose();
  }
}

/**
 * A flow the browser created and watches from its first state, and may cancel (`QrLogin`,
 * `ApprovalLogin`): its id, topic and expiry from the creation answer, and `cancel()` as
 * `DELETE <collection>/{id}` with the watch token.
 */
export abstract class CreatedFlowHandle extends FlowHandle {
  /** The flow id. */
  readonly id: string;
  /** `<kind>:<id>` (`qr:<id>`, `approval:<id>`). */
  readonly topic: Topic;
  /** When the flow expires if nobody confirms / approves it (ISO 8601, server clock). */
  readonly expiresAt: string;
  /** `DELETE` here cancels the flow; an ES private field, so it never shows in `console.log(handle)`. */
  readonly #cancelPath: string;

  /** @internal `collection`: the flows' path, e.g. `/v1/qr`. */
  protected constructor(ctx: FlowContext, created: { state: FlowState; watchToken: string }, collection: string) {
    super(ctx, { topic: created.state.topic, watchToken: created.watchToken, initial: created.state });
    this.id = created.state.id;
    this.topic = created.state.topic;
    this.expiresAt = created.state.expiresAt;
    this.#cancelPath = `${collection}/${encodeURIComponent(this.id)}`;
  }

  /** The flow's current state (starts as `pending`). */
  override get state(): FlowState {
    return super.state as FlowState;
  }

  /**
   * Cancel from the browser (`DELETE <collection>/{id}` with the watch token): resolves with the
   * `cancelled` state (the phone is pushed it); `session()` then rejects with `cancelled`. Rejects
   * with `invalid_transition` (and `error.state`) when the flow is past cancelling (already answered).
   */
  cancel(opts: WaitOptions = {}): Promise<FlowState> {
    return this.cancelAt(this.#cancelPath, opts);
  }
}

/** The states in which the creator may redeem: qr `confirmed`, login `succeeded`, approval `approved`. */
const REDEEMABLE: ReadonlySet<string> = new Set<string>(['confirmed', 'succeeded', 'approved']);

/** The error a final (or lost) state means for `session()`; null while the flow may still succeed. */
function terminalError(state: FlowState): HandoffError | null {
  switch (state.state as string) {
    case 'denied':
      return new HandoffError('denied', 'The sign-in request was denied on the phone.', { state });
    case 'cancelled':
      return new HandoffError('cancelled', 'The flow was cancelled.', { state });
    case 'expired':
      return new HandoffError('expired', 'The flow expired before its session was redeemed.', { state });
    case 'failed':
      return new HandoffError('failed', state.error?.message ? `The login failed: ${state.error.message}` : undefined, { state });
    case 'redeemed':
      return new HandoffError('already_redeemed', 'The session of this flow was already redeemed.', { state });
    default:
      return null;
  }
}
