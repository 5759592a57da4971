import type { FlowState, Topic } from '@handoff/protocol';
import { SUBSCRIPTION_CODES, type SubscriptionCode } from './codes.js';
import type { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { HandoffError, isTemporary, toHandoffError } from './errors.js';
import type { HttpClient } from './http.js';
import type { ResolvedOptions } from './options.js';
import type { Scope } from './scope.js';
import type { TokenSource } from './token.js';
import { isEnded, parseFlowState, retryDelay } from './utils.js';

/**
 * A flow subscription's state:
 * - `unsubscribed`: not watching (not started, or ended: final state, failure, close);
 * - `subscribing`: waiting for a transport, or for the snapshot after (re)subscribing;
 * - `subscribed`: the snapshot is in and newer states arrive as they happen.
 */
export type SubscriptionState = 'unsubscribed' | 'subscribing' | 'subscribed';

/** A subscription state change: old/new state and why. */
export interface SubscriptionEvent {
  oldState: SubscriptionState;
  newState: SubscriptionState;
  code: SubscriptionCode;
  reason: string;
  /** The error that ended the subscription (code `failed`). */
  error?: HandoffError;
}

export interface SubscriptionEvents {
  subscription: SubscriptionEvent;
  flow: FlowState;
}

/** What the SDK shares with every subscription. */
export interface SubscriptionDeps {
  connection: Connection;
  http: HttpClient;
  options: ResolvedOptions;
}

/**
 * How a subscription proves it may watch the flow: the creator's watch token, or (a qr flow's
 * scanner) the app user's JWT: the socket's own identity, and `Authorization: Bearer` on long-polls.
 */
export type FlowAccess = { watchToken: string } | { scanner: TokenSource };

/**
 * The version rule (docs/protocol.md §4): a state is taken when its version is above the last one
 * seen; everything at or below it is stale and dropped. The one exception: a queued async login is
 * pushed again with the same version when its queue position moves, so a same-version `queued`
 * state is taken when its `position` is lower than the one held (positions only go down; a
 * higher or equal one is a late duplicate).
 */
export function isNewer(last: FlowState | null, next: FlowState): boolean {
  if (!last) return true;
  if (next.version > last.version) return true;
  if (next.version !== last.version || next.state !== last.state || typeof next.position !== 'number') return false;
  return last.position === undefined || next.position < last.position;
}

/**
 * A subscription's state (of a flow's `FlowSubscription`, of the user channel's `Approvals`): starts
 * `unsubscribed`; `set` is the one place it changes, and emits old/new with `{code, reason}` (and
 * the error that ended it) through `emit`, only when it does change.
 */
export class SubscriptionStatus {
  private current: SubscriptionState = 'unsubscribed';

  constructor(private readonly emit: (e: SubscriptionEvent) => void) {}

  get state(): SubscriptionState {
    return this.current;
  }

  set(state: SubscriptionState, code: SubscriptionCode, reason: string, error?: HandoffError): void {
    if (this.current === state) return;
    const oldState = this.current;
    this.current = state;
    this.emit(error ? { oldState, newState: state, code, reason, error } : { oldState, newState: state, code, reason });
  }
}

/**
 * Watches one flow over whichever transport the client has: Socket.IO (`subscribe` + pushes)
 * while connected, HTTP long-poll in fallback. After every (re)connect or transport switch it
 * subscribes again and takes the snapshot, so a transition made while it was away (even the
 * final one) is never missed. States pass the version rule of `isNewer`; a final state ends it.
 */
export class FlowSubscription {
  readonly events = new Emitter<SubscriptionEvents>();
  private readonly status = new SubscriptionStatus((e) => this.events.emit('subscription', e));
  private current: FlowState | null;
  /** Lives while not unsubscribed. */
  private scope: Scope | null = null;
  /** The activity for the current transport state (a subscribe ack, a long-poll loop). */
  private mode: Scope | null = null;
  private modeFor: string | null = null;
  private viaSocket = false;
  /** Secrets; an ES private field, so they never show in `console.log`. */
  readonly #access: FlowAccess;
  /** The scanner's JWT the last long-poll read sent (to tell a refreshed one from it). */
  #bearer: string | undefined;

  constructor(
    private readonly deps: SubscriptionDeps,
    readonly topic: Topic,
    access: FlowAccess,
    initial: FlowState | null,
    private readonly parent: Scope,
  ) {
    this.#access = { ...access };
    this.current = initial;
  }

  get state(): SubscriptionState {
    return this.status.state;
  }

  /** The last state taken. */
  get flow(): FlowState | null {
    return this.current;
  }

  /** Start watching (unsubscribed → subscribing). A no-op unless unsubscribed. */
  subscribe(): void {
    if (this.status.state !== 'unsubscribed' || this.parent.disposed) return;
    const scope = this.parent.child();
    this.scope = scope;
    const { connection } = this.deps;
    this.status.set('subscribing', SUBSCRIPTION_CODES.subscribe, 'subscribe called');
    if (scope.disposed) return;
    scope.add(connection.events.on('push', (state) => {
      if (state.topic === this.topic) this.deliver(state);
    }));
    scope.add(connection.events.on('transport', (e) => {
      if (e.oldState !== e.newState) this.sync();
    }));
    scope.add(connection.acquire());
    this.sync();
  }

  /** Stop watching (→ unsubscribed, code `closed`). */
  unsubscribe(): void {
    this.end(SUBSCRIPTION_CODES.closed, 'unsubscribe called');
  }

  /**
   * Offer a state (a push, a poll answer, an HTTP answer of the SDK's own call): taken when it
   * passes the version rule, then emitted; a final state ends the subscription.
   */
  deliver(state: FlowState): void {
    if (state.topic !== this.topic || !isNewer(this.current, state)) return;
    this.current = state;
    this.events.emit('flow', state);
    if (isEnded(state.state)) this.end(SUBSCRIPTION_CODES.final, `the flow is ${state.state}`);
  }

  /** Follow the client's transport state: subscribe over the socket, long-poll, or wait. */
  private sync(): void {
    const scope = this.scope;
    if (!scope || this.status.state === 'unsubscribed') return;
    const transport = this.deps.connection.state;
    if (this.mode && this.modeFor === transport) return;
    this.mode?.dispose();
    const mode = scope.child();
    this.mode = mode;
    this.modeFor = transport;
    this.viaSocket = false;
    if (this.status.state === 'subscribed') {
      this.status.set('subscribing', SUBSCRIPTION_CODES.transportChanged, `the transport is ${transport}`);
      if (mode.disposed) return;
    }
    if (transport === 'connected') this.socketSubscribe(mode, 0);
    else if (transport === 'fallback') void this.longPoll(mode);
  }

  private socketSubscribe(mode: Scope, attempt: number): void {
    const { connection, options } = this.deps;
    this.viaSocket = true;
    this.credential()
      // The scanner sends no watch token: the server knows the socket's user from its handshake. It
      // still needs a token (the one the socket connected with); none ends the watch `unauthorized`.
      // (Left unsent when the transport moved on while the token was asked for.)
      .then((credential) =>
        mode.disposed
          ? Promise.reject(new HandoffError('closed'))
          : connection.request('subscribe', 'watchToken' in credential ? { topic: this.topic, ...credential } : { topic: this.topic }, options.requestTimeout),
      )
      .then((res) => {
        const state = parseFlowState(res.state);
        if (!state) throw new HandoffError('bad_response', 'Unexpected subscribe ack.');
        return state;
      })
      .then(
        (state) => {
          if (mode.disposed) return;
          this.status.set('subscribed', SUBSCRIPTION_CODES.subscribed, 'socket snapshot');
          if (!mode.disposed) this.deliver(state);
        },
        (err: unknown) => {
          if (mode.disposed) return;
          const delay = this.afterFailure(mode, toHandoffError(err), attempt);
          if (delay !== null) mode.timeout(() => this.socketSubscribe(mode, attempt + 1), delay);
        },
      );
  }

  /**
   * After a failed subscribe or read: end on a permanent error; else mark the subscription
   * `retrying` and answer the delay before the next try (full-jitter backoff, at least the
   * error's Retry-After). Null when there is nothing left to do.
   */
  private afterFailure(mode: Scope, err: HandoffError, attempt: number): number | null {
    if (!isTemporary(err)) {
      this.end(SUBSCRIPTION_CODES.failed, err.message, err);
      return null;
    }
    if (this.status.state === 'subscribed') {
      this.status.set('subscribing', SUBSCRIPTION_CODES.retrying, err.message);
      if (mode.disposed) return null;
    }
    return retryDelay(err, attempt, this.deps.options);
  }

  /**
   * Long-poll: a snapshot read first, then `?after=<version>&wait=<s>` reads, each answered as
   * soon as the version moves (or at `wait` with the current state). Errors back off with full
   * jitter; 429/503 wait at least their `Retry-After`.
   */
  private async longPoll(mode: Scope): Promise<void> {
    const { http, options } = this.deps;
    const path = `/v1/flows/${encodeURIComponent(this.topic)}`;
    let snapshot = true;
    let attempt = 0;
    /** A refused JWT is refreshed once; refused again before a read succeeds, the watch ends. */
    let refreshing = false;
    while (!mode.disposed) {
      try {
        const version = this.current?.version ?? 0;
        const credential = await this.credential();
        if (mode.disposed) return;
        const res = await http.request(
          'GET',
          snapshot ? path : `${path}?after=${version}&wait=${options.longPollWait}`,
          {
            ...credential,
            timeout: snapshot ? options.requestTimeout : options.longPollWait * 1000 + options.requestTimeout,
          },
          mode,
        );
        if (mode.disposed) return;
        const state = parseFlowState(res.body);
        if (!state) throw new HandoffError('bad_response', 'Unexpected flow state from the server.', { status: res.status });
        attempt = 0;
        refreshing = false;
        if (snapshot) {
          snapshot = false;
          this.status.set('subscribed', SUBSCRIPTION_CODES.subscribed, 'long-poll snapshot');
          if (mode.disposed) return;
        }
        this.deliver(state);
      } catch (caught) {
        if (mode.disposed) return;
        const err = toHandoffError(caught);
        snapshot = true;
        if (!refreshing && (await this.refreshed(err))) {
          if (mode.disposed) return;
          refreshing = true;
          continue;
        }
        if (mode.disposed) return;
        const delay = this.afterFailure(mode, err, attempt++);
        if (delay === null) return;
        await mode.sleep(delay);
      }
    }
  }

  /**
   * The scanner's JWT was refused (`unauthorized` from the server) and the token function, asked
   * once more, gives another one: read again with it at once (as the SDK's app actions do). No
   * new one, or a second refusal in a row, ends the watch.
   */
  private async refreshed(err: HandoffError): Promise<boolean> {
    const access = this.#access;
    if (!('scanner' in access) || err.code !== 'unauthorized' || !access.scanner.refreshable) return false;
    const refused = this.#bearer;
    try {
      const fresh = await access.scanner.get();
      return fresh !== undefined && fresh !== refused;
    } catch {
      return false;
    }
  }

  /**
   * What a subscribe or read sends: the watch token, or the scanner's JWT (asked for each read, so a
   * refreshed one is used). A token function that fails is a temporary error (retried with
   * backoff, as the socket's connect does); no token at all ends the watch as `unauthorized`.
   */
  private async credential(): Promise<{ watchToken: string } | { bearer: string }> {
    const access = this.#access;
    if ('watchToken' in access) return { watchToken: access.watchToken };
    let bearer: string | undefined;
    try {
      bearer = await access.scanner.get();
    } catch (err) {
      throw new HandoffError('network', `The token function failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (!bearer) throw new HandoffError('unauthorized', "Watching a scanned flow needs the app's JWT: new Handoff({ url, token }).");
    this.#bearer = bearer;
    return { bearer };
  }

  private end(code: SubscriptionCode, reason: string, error?: HandoffError): void {
    if (this.status.state === 'unsubscribed' || !this.scope) return;
    if (this.viaSocket) this.deps.connection.send('unsubscribe', { topic: this.topic });
    const scope = this.scope;
    this.scope = this.mode = this.modeFor = null;
    this.viaSocket = false;
    scope.dispose();
    this.status.set('unsubscribed', code, reason, error);
  }
}
