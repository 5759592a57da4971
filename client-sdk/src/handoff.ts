import { MAX_LONG_POLL_SECONDS, type FlowState, type Requester, type Session } from '@handoff/protocol';
import { ApprovalLogin, parseCreatedApproval } from './approval-login.js';
import { Approvals } from './approvals.js';
import { AsyncLogin, parseQueuedLogin } from './async-login.js';
import { Connection, type TransportEvent, type TransportName, type TransportState } from './connection.js';
import type { Listener, Unsubscribe } from './emitter.js';
import { Endpoints } from './endpoints.js';
import { HandoffError, isHandoffError } from './errors.js';
import type { FlowContext } from './flow.js';
import { HttpClient } from './http.js';
import { resolveOptions, type HandoffOptions, type ResolvedOptions } from './options.js';
import { QrLogin, parseCreatedQr } from './qr-login.js';
import { ScannedQr } from './scanned-qr.js';
import { Scope } from './scope.js';
import { expectShape, parseFlowState, parseRequester, parseSession, raceWait, type WaitOptions } from './utils.js';

/** Email (or the app's own `login`, checked by the app's CREDENTIALS_URL) + password, or email + one-time code. */
export type LoginCredentials = { email: string; password: string } | { login: string; password: string } | { email: string; code: string };

/** What the phone learns when it scans: the flow (now `scanned`), who is asking, and the app backend's `context` if it gave one. */
export interface ScanResult {
  state: FlowState;
  requester: Requester;
  /** The small JSON object the app's backend attached with the server API (POST /v1/server/qr), if any. */
  context?: Record<string, unknown>;
}

/** Options of `asyncLogin`. */
export interface AsyncLoginOptions extends WaitOptions {
  /**
   * Seconds (1–30) the server may first wait for the result (`Prefer: respond-async, wait=N`): a
   * login decided in time is answered 200 with the session (or 401), else 202 as usual. Default: none.
   */
  wait?: number;
}

/** Events of the client. */
export interface HandoffEvents {
  /** The transport state or the live transport changed: old/new state, `transport`, `{code, reason}`. */
  transport: TransportEvent;
}

type QrAction = 'scan' | 'confirm' | 'cancel';

/** Options of `approvalLogin`. */
export interface ApprovalLoginOptions extends WaitOptions {
  /** Who wants to sign in: the email (or the app's own login) of the user whose phone is asked. */
  login: string;
}

/**
 * The Handoff client. One per page (browser) or per app session (phone); it opens its realtime
 * link lazily, while a flow is being watched (or between `connect()` and `disconnect()`), and
 * `close()` ends everything it started.
 *
 * ```ts
 * const handoff = new Handoff({ url: 'https://auth.example.com' });
 * const qr = await handoff.qrLogin();
 * qr.on('state', (s) => render(s));
 * const session = await qr.session();
 * ```
 */
export class Handoff {
  private readonly options: ResolvedOptions;
  private readonly endpoints: Endpoints;
  private readonly scope = new Scope();
  private readonly http: HttpClient;
  private readonly connection: Connection;
  private pin: (() => void) | null = null;
  private _approvals: Approvals | null = null;

  constructor(options: HandoffOptions) {
    this.options = resolveOptions(options);
    this.endpoints = new Endpoints(this.options.urls);
    this.http = new HttpClient(this.endpoints, this.options.fetch, this.options.headers);
    this.connection = new Connection(this.options, this.scope.child(), this.endpoints);
  }

  /** The base URL this client talks to now (no trailing slash): with a list, the one in use. */
  get url(): string {
    return this.endpoints.current;
  }

  /** `disconnected | connecting | connected | fallback`. */
  get state(): TransportState {
    return this.connection.state;
  }

  /** The live transport: `websocket` (or `polling`) while connected, `long-poll` in fallback, else null. */
  get transport(): TransportName | null {
    return this.connection.transport;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.scope.disposed;
  }

  /** Listen to client events; returns the off-function. */
  on<K extends keyof HandoffEvents>(event: K, fn: Listener<HandoffEvents[K]>): Unsubscribe {
    return this.connection.events.on(event, fn);
  }

  /** Remove a listener added with `on`. */
  off<K extends keyof HandoffEvents>(event: K, fn: Listener<HandoffEvents[K]>): void {
    this.connection.events.off(event, fn);
  }

  /**
   * Keep the realtime link open (until `disconnect()`), e.g. on the phone so that `scan` /
   * `confirm` / `cancel` go over socket acks. Resolves with the state once it is `connected` or
   * `fallback`; `opts.timeout` / `opts.signal` bound the wait (default: no bound).
   */
  connect(opts: WaitOptions = {}): Promise<TransportState> {
    if (this.closed) return Promise.reject(new HandoffError('closed'));
    this.pin ??= this.connection.acquire();
    return raceWait<TransportState>(this.scope, opts, (settle) => {
      const ready = (): boolean => {
        const state = this.connection.state;
        if (state !== 'connected' && state !== 'fallback') return false;
        settle({ ok: true, value: state });
        return true;
      };
      if (ready()) return;
      return this.connection.events.on('transport', () => void ready());
    });
  }

  /** Undo `connect()`: the link closes when no flow is watched either. */
  disconnect(): void {
    const pin = this.pin;
    this.pin = null;
    pin?.();
  }

  /**
   * Browser side: create a QR login flow (`POST /v1/qr`) and start watching it.
   * Rejects with `rate_limited` / `unavailable` / `network` / `timeout` / `aborted` / `closed`.
   */
  async qrLogin(opts: WaitOptions = {}): Promise<QrLogin> {
    const res = await this.request('POST', '/v1/qr', {}, opts);
    return new QrLogin(this.context(), parseCreatedQr(res.body));
  }

  /**
   * Async password login: `POST /v1/sessions` with `Prefer: respond-async` (plus `wait=N` when
   * `opts.wait` is given). A 202 gives a queued `login` flow to follow; a 200 (the server decided at
   * once, or within `wait`) gives a handle whose `session()` resolves at once (`queued: false`, no
   * state events). Wrong credentials reject here on a 200 answer (`invalid_credentials`), or later
   * as `session()` → `failed` on a queued login.
   */
  async asyncLogin(credentials: LoginCredentials, opts: AsyncLoginOptions = {}): Promise<AsyncLogin> {
    const wait = opts.wait;
    if (wait !== undefined && (!Number.isInteger(wait) || wait < 1 || wait > MAX_LONG_POLL_SECONDS)) {
      throw new TypeError(`Handoff: asyncLogin wait must be a whole number of seconds, 1–${MAX_LONG_POLL_SECONDS}`);
    }
    const prefer = wait === undefined ? 'respond-async' : `respond-async, wait=${wait}`;
    const timeout = opts.timeout ?? (wait === undefined ? undefined : wait * 1000 + this.options.requestTimeout);
    const res = await this.request('POST', '/v1/sessions', { body: credentials, headers: { prefer } }, { signal: opts.signal, timeout });
    if (res.status === 202) return new AsyncLogin(this.context(), { queued: true, ...parseQueuedLogin(res.body) });
    if (res.status === 200) return new AsyncLogin(this.context(), { queued: false, session: expectShape(parseSession(res.body), 'session') });
    throw new HandoffError('bad_response', `POST /v1/sessions answered ${res.status}.`, { status: res.status });
  }

  /**
   * Browser side, push-to-approve: ask the phone of user `login` (`POST /v1/approvals`) and start
   * watching. Show the handle's `number`; the phone is pushed the request with three choices and
   * the user picks that number. `session()` resolves once approved (and redeemed), or rejects with
   * `denied` / `cancelled` / `expired`. An unknown login is answered as a known one (its request
   * just expires). Rejects here with `bad_request`, `rate_limited`, `unavailable`, `network`, …
   */
  async approvalLogin(opts: ApprovalLoginOptions): Promise<ApprovalLogin> {
    if (typeof opts?.login !== 'string' || opts.login.trim() === '') throw new TypeError('Handoff: approvalLogin needs { login }');
    const res = await this.request('POST', '/v1/approvals', { body: { login: opts.login } }, opts);
    return new ApprovalLogin(this.context(), parseCreatedApproval(res.body));
  }

  /**
   * Phone side, push-to-approve (needs `token`): the sign-in requests for this user.
   * `approvals.on('request', (req) => …)` is pushed each pending request with its `choices` and
   * `requester`; `approvals.approve(id, number)` / `approvals.deny(id)` answer it.
   */
  get approvals(): Approvals {
    this._approvals ??= new Approvals({
      connection: this.connection,
      options: this.options,
      scope: this.scope,
      act: (event, payload, path, body, opts) => this.appAction(event, payload, path, body, opts),
    });
    return this._approvals;
  }

  /** Sync password (or code) login: `POST /v1/sessions` → the session. */
  async login(credentials: LoginCredentials, opts: WaitOptions = {}): Promise<Session> {
    const res = await this.request('POST', '/v1/sessions', { body: credentials }, opts);
    return expectShape(parseSession(res.body), 'session');
  }

  /**
   * Phone side (needs `token`): scan QR flow `id` (pending → scanned); resolves with the flow and
   * who is asking (ip, userAgent, createdAt), to show before confirming.
   */
  async scan(id: string, opts: WaitOptions = {}): Promise<ScanResult> {
    const res = await this.qrAction('scan', id, opts);
    const state = expectShape(parseFlowState(res.state), 'flow state');
    const requester = expectShape(parseRequester(res.requester), 'requester');
    const context = res.context;
    return typeof context === 'object' && context !== null && !Array.isArray(context)
      ? { state, requester, context: context as Record<string, unknown> }
      : { state, requester };
  }

  /** Phone side: confirm the scanned flow (scanned → confirmed); only the user who scanned may. */
  async confirm(id: string, opts: WaitOptions = {}): Promise<FlowState> {
    return expectShape(parseFlowState((await this.qrAction('confirm', id, opts)).state), 'flow state');
  }

  /** Phone side: decline the scanned flow (scanned → cancelled); only the user who scanned may. */
  async cancel(id: string, opts: WaitOptions = {}): Promise<FlowState> {
    return expectShape(parseFlowState((await this.qrAction('cancel', id, opts)).state), 'flow state');
  }

  /**
   * Phone side (needs `token`): watch QR flow `id` that this user scanned, without its watch token,
   * to see what the browser does meanwhile (`cancelled`, `expired`, `redeemed` after the confirm).
   * Throws only `closed` (after `close()`): a watch the server refuses (`invalid_watch_token` for a
   * user who did not scan, `not_found`), or one without a token (`unauthorized`), ends its
   * subscription as `failed` with that error.
   */
  watchScanned(id: string): ScannedQr {
    return new ScannedQr(this.context(), id);
  }

  /** A safe summary for logs and `JSON.stringify` (never the token). */
  toJSON(): { url: string; state: TransportState; transport: TransportName | null } {
    return { url: this.url, state: this.state, transport: this.transport };
  }

  /**
   * End everything: the socket, every flow handle (pending `session()` calls reject with
   * `closed`), every request, timer and listener the client registered. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.pin = null;
    this.connection.beginClose();
    this.scope.dispose();
    this.connection.events.clear();
  }

  private context(): FlowContext {
    if (this.closed) throw new HandoffError('closed');
    return { connection: this.connection, http: this.http, options: this.options, scope: this.scope };
  }

  private request(
    method: string,
    path: string,
    req: { body?: unknown; headers?: Record<string, string>; bearer?: string },
    opts: WaitOptions,
  ): ReturnType<HttpClient['request']> {
    if (this.closed) return Promise.reject(new HandoffError('closed'));
    return this.http.request(method, path, { ...req, signal: opts.signal, timeout: opts.timeout ?? this.options.requestTimeout }, this.scope);
  }

  /** scan / confirm / cancel of a QR flow; answers `{state, requester?, context?}`. */
  private qrAction(action: QrAction, id: string, opts: WaitOptions): Promise<{ state: unknown; requester?: unknown; context?: unknown }> {
    return this.appAction(`qr:${action}`, { id }, `/v1/qr/${encodeURIComponent(id)}/${action}`, undefined, opts);
  }

  /**
   * An app action (JWT required): Socket.IO `event` with `payload` and an ack when connected, else
   * `POST path` with `body`; answers `{state, requester?, context?}`. With a token function, an
   * `unauthorized` answer asks it once more, and a fresh token is tried over HTTP (the socket
   * keeps the identity it connected with).
   */
  private async appAction(
    event: string,
    payload: Record<string, unknown>,
    path: string,
    body: Record<string, unknown> | undefined,
    opts: WaitOptions,
  ): Promise<{ state: unknown; requester?: unknown; context?: unknown }> {
    if (this.closed) throw new HandoffError('closed');
    const tokens = this.options.tokens;
    const token = await tokens.get();
    if (this.closed) throw new HandoffError('closed');
    const action = event.slice(event.indexOf(':') + 1);
    if (!token) throw new HandoffError('unauthorized', `${action} needs the app's JWT: new Handoff({ url, token }).`);
    let refused: string | undefined; // the token HTTP answered `unauthorized` to
    try {
      if (this.connection.state === 'connected') {
        const res = await this.connection.request(event, payload, opts.timeout ?? this.options.requestTimeout, opts.signal);
        return { state: res.state, requester: res.requester, context: res.context };
      }
      refused = token;
      return await this.appActionOverHttp(path, body, token, opts);
    } catch (err) {
      if (!isHandoffError(err, 'unauthorized') || !tokens.refreshable) throw err;
      const fresh = await tokens.get();
      if (this.closed) throw new HandoffError('closed');
      if (!fresh || fresh === refused) throw err;
      return this.appActionOverHttp(path, body, fresh, opts);
    }
  }

  private async appActionOverHttp(
    path: string,
    body: Record<string, unknown> | undefined,
    token: string,
    opts: WaitOptions,
  ): Promise<{ state: unknown; requester?: unknown; context?: unknown }> {
    const res = await this.request('POST', path, { body, bearer: token }, opts);
    // HTTP answers the state object itself (scan: plus `requester` and `context`).
    const answer = typeof res.body === 'object' && res.body !== null ? (res.body as Record<string, unknown>) : {};
    return { state: res.body, requester: answer.requester, context: answer.context };
  }
}
