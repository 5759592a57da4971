import { RECONNECT_HINT_EVENT, type ConnectErrorData, type FlowState } from '@handoff/protocol';
import { io as defaultIo } from 'socket.io-client';
import { TRANSPORT_CODES, type TransportCode } from './codes.js';
import { Emitter } from './emitter.js';
import type { Endpoints } from './endpoints.js';
import { HandoffError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { Scope } from './scope.js';
import { backoff, parseApprovalRequest, parseErrorBody, parseFlowState } from './utils.js';
import type { ApprovalRequest } from './utils.js';

/**
 * The client's transport state:
 * - `disconnected`: nothing needs the realtime link (or `close()` was called);
 * - `connecting`: a socket attempt is under way (first connect or after a drop);
 * - `connected`: a Socket.IO socket is up (a real WebSocket with the default `transports`);
 * - `fallback`: the socket could not be had; flows are watched over HTTP long-poll while the
 *   socket is tried again in the background.
 */
export type TransportState = 'disconnected' | 'connecting' | 'connected' | 'fallback';

/** What carries the flow states right now: a Socket.IO transport, or HTTP long-poll. */
export type TransportName = 'websocket' | 'polling' | 'webtransport' | 'long-poll';

/** A transport state change: old/new state, which transport is live, and why. */
export interface TransportEvent {
  oldState: TransportState;
  newState: TransportState;
  /** The live transport after the change; null while disconnected or connecting. */
  transport: TransportName | null;
  code: TransportCode;
  reason: string;
}

export interface ConnectionEvents {
  transport: TransportEvent;
  push: FlowState;
  /** A push of the user channel (`user:me`): one of the user's approvals, with requester and choices. */
  approval: ApprovalRequest;
}

/** The few socket calls the SDK makes, untyped at this seam (payloads are narrowed where they arrive). */
interface RawSocket {
  on(event: string, fn: (...args: never[]) => void): unknown;
  off(event: string, fn: (...args: never[]) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  connect(): unknown;
  disconnect(): unknown;
  io?: { engine?: RawEngine | null };
}
interface RawEngine {
  transport?: { name?: string };
  on(event: string, fn: (...args: never[]) => void): unknown;
  off(event: string, fn: (...args: never[]) => void): unknown;
}

function listen<A extends unknown[]>(scope: Scope, target: RawSocket | RawEngine, event: string, fn: (...args: A) => void): void {
  const handler = fn as unknown as (...args: never[]) => void;
  target.on(event, handler);
  scope.add(() => target.off(event, handler));
}

/**
 * The realtime link: one Socket.IO socket at a time, opened while something needs it (reference
 * counted by `acquire()`), reconnected with full-jitter backoff, and replaced by the `fallback`
 * state (flows long-poll over HTTP) when it cannot be had; the socket is retried in the
 * background and takes over again when it comes up. socket.io-client's own reconnection is off:
 * each attempt is a fresh socket, so one attempt's listeners and timers die with it.
 */
export class Connection {
  readonly events = new Emitter<ConnectionEvents>();
  private _state: TransportState = 'disconnected';
  private _transport: TransportName | null = null;
  private users = 0;
  /** Scope of the current socket attempt (or connection); null between attempts. */
  private attempt: Scope | null = null;
  private socket: RawSocket | null = null;
  private failures = 0;
  private cancelRetry: (() => void) | null = null;
  private cancelFallback: (() => void) | null = null;
  /** The server refused our token on the socket: no more socket attempts (with a token function: until the next start). */
  private socketRefused = false;
  /** After a refusal, the token function was asked once more and its answer tried: a second refusal is final. */
  private refusedOnce = false;
  /** Set by the client's `close()` before it disposes everything: releases then report `closed`, not `idle`. */
  private closing = false;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly scope: Scope,
    /** Where sockets connect; a failed attempt (or the server's shutdown hint) moves on to the next URL. */
    private readonly endpoints: Endpoints,
  ) {
    scope.add(() => this.stop(TRANSPORT_CODES.closed, 'client closed'));
  }

  get state(): TransportState {
    return this._state;
  }

  get transport(): TransportName | null {
    return this._transport;
  }

  /** Something needs the realtime link; returns its release. The link closes when the last user releases it. */
  acquire(): () => void {
    if (this.scope.disposed) return () => {};
    this.users++;
    if (this._state === 'disconnected') this.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.users--;
      if (this.users === 0 && !this.closing && !this.scope.disposed) this.stop(TRANSPORT_CODES.idle, 'nothing to watch');
    };
  }

  /** The client is closing: from now on the link only goes down, with code `closed`. */
  beginClose(): void {
    this.closing = true;
  }

  /**
   * Emit `event` with an ack over the connected socket and resolve with the fields of an
   * `{ok: true, …}` ack (unknown values: the caller narrows them). An `{ok: false, error}` ack
   * rejects with its contract error (and the flow state it carries); anything else with
   * `bad_response`. Also rejects with `network` when not connected or the socket closes first,
   * `timeout`, `aborted`, or `closed`.
   */
  async request(event: string, payload: unknown, timeout: number, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const ack = await this.emitWithAck(event, payload, timeout, signal);
    const res = typeof ack === 'object' && ack !== null ? (ack as Record<string, unknown>) : {};
    if (res.ok === true) return res;
    const body = parseErrorBody(res.error);
    throw body
      ? new HandoffError(body.code, body.message || undefined, { state: parseFlowState(res.state) ?? undefined })
      : new HandoffError('bad_response', `Unexpected ${event} ack.`);
  }

  private emitWithAck(event: string, payload: unknown, timeout: number, signal?: AbortSignal): Promise<unknown> {
    const socket = this.socket;
    const attempt = this.attempt;
    if (!socket || !attempt || this._state !== 'connected') {
      return Promise.reject(new HandoffError('network', 'The socket is not connected.'));
    }
    return new Promise((resolve, reject) => {
      const local = attempt.child();
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        local.dispose();
        fn();
      };
      local.add(() =>
        finish(() =>
          reject(this.scope.disposed ? new HandoffError('closed') : new HandoffError('network', 'The socket closed before the answer.')),
        ),
      );
      local.timeout(() => finish(() => reject(new HandoffError('timeout', `No ack for ${event} within ${timeout} ms.`))), timeout);
      local.onAbort(signal, () => finish(() => reject(new HandoffError('aborted', undefined, { cause: signal?.reason }))));
      if (signal?.aborted) return finish(() => reject(new HandoffError('aborted', undefined, { cause: signal.reason })));
      socket.emit(event, payload, (res: unknown) => finish(() => resolve(res)));
    });
  }

  /** Emit without an ack (fire and forget); a no-op unless connected. */
  send(event: string, payload: unknown): void {
    if (this.socket && this._state === 'connected') this.socket.emit(event, payload);
  }

  private start(): void {
    // A fixed token that was refused will be again; a token function may have a fresh one.
    if (this.socketRefused && !this.opts.tokens.refreshable) return this.refused();
    this.socketRefused = this.refusedOnce = false;
    this.failures = 0;
    this.setState('connecting', null, TRANSPORT_CODES.connect, 'connect');
    this.armFallback();
    this.openSocket();
  }

  private stop(code: TransportCode, reason: string): void {
    this.clearTimers();
    this.attempt?.dispose();
    this.attempt = null;
    this.socket = null;
    this.failures = 0;
    this.setState('disconnected', null, code, reason);
  }

  /** A new socket attempt: read the token (a token function is called now), then dial. */
  private openSocket(): void {
    if (this.scope.disposed || this.attempt) return;
    const attempt = this.scope.child();
    this.attempt = attempt;
    const url = this.endpoints.current;
    let token: string | undefined | Promise<string | undefined>;
    try {
      token = this.opts.tokens.read();
    } catch (err) {
      return this.onTokenError(attempt, err);
    }
    if (!(token instanceof Promise)) return this.dial(attempt, url, token);
    // The token function answers later; it gets the connect timeout, as the socket would.
    const cancel = attempt.timeout(
      () => this.onTokenError(attempt, new Error(`no token within ${this.opts.connectTimeout} ms`)),
      this.opts.connectTimeout,
    );
    token.then(
      (value) => {
        if (attempt !== this.attempt) return;
        cancel();
        this.dial(attempt, url, value);
      },
      (err: unknown) => this.onTokenError(attempt, err),
    );
  }

  private dial(attempt: Scope, url: string, token: string | undefined): void {
    const base = new URL(url);
    const factory = this.opts.io ?? defaultIo;
    const socket = factory(base.origin, {
      path: base.pathname.replace(/\/+$/, '') + this.opts.socketPath,
      transports: this.opts.transports,
      // A function, not an object: socket.io keeps `auth` on the socket, and a function shows no token.
      auth: (cb: (data: object) => void) => cb(token ? { token } : {}),
      reconnection: false,
      forceNew: true,
      autoConnect: false,
      timeout: this.opts.connectTimeout,
    }) as unknown as RawSocket;
    attempt.add(() => void socket.disconnect());
    listen(attempt, socket, 'connect', () => this.onConnect(attempt, socket));
    listen(attempt, socket, 'connect_error', (err: unknown) => this.onConnectError(attempt, err, url));
    // The server is shutting down gracefully and will close this socket: reconnect elsewhere.
    listen(attempt, socket, RECONNECT_HINT_EVENT, () => this.endpoints.rotate(url));
    listen(attempt, socket, 'disconnect', (reason: unknown) => this.onDisconnect(attempt, String(reason)));
    listen(attempt, socket, 'state', (raw: unknown) => {
      // A push of the user channel (topic `user:me`) is one of the user's approvals; any other, a flow's state.
      const approval = parseApprovalRequest(raw);
      if (approval) this.events.emit('approval', approval);
      const state = approval ?? parseFlowState(raw);
      if (state) this.events.emit('push', state);
    });
    socket.connect();
  }

  private onConnect(attempt: Scope, socket: RawSocket): void {
    if (attempt !== this.attempt) return;
    this.failures = 0;
    this.refusedOnce = false;
    this.clearTimers();
    this.socket = socket;
    const engine = socket.io?.engine;
    if (engine) {
      listen(attempt, engine, 'upgrade', () => {
        if (attempt === this.attempt) this.setState('connected', this.engineTransport(socket), TRANSPORT_CODES.upgraded, 'transport upgraded');
      });
    }
    this.setState('connected', this.engineTransport(socket), TRANSPORT_CODES.connected, 'socket connected');
  }

  private engineTransport(socket: RawSocket): TransportName {
    const name = socket.io?.engine?.transport?.name;
    if (name === 'websocket' || name === 'polling' || name === 'webtransport') return name;
    return this.opts.transports[0] ?? 'websocket';
  }

  /**
   * A socket attempt failed. The server's refusals carry a catalogue `{code, message}` in
   * `err.data`: `unauthorized` (the token) is decided on that code, never on the message; any
   * other failure (a refusal with `unavailable`, no answer, a transport error) moves on to the
   * next URL and retries after a backoff.
   */
  private onConnectError(attempt: Scope, err: unknown, url: string): void {
    if (attempt !== this.attempt) return;
    attempt.dispose();
    this.attempt = null;
    const refusal = refusalOf(err);
    if (refusal?.code === 'unauthorized') return this.onUnauthorized();
    this.endpoints.rotate(url);
    this.attemptFailed(refusal ? `${refusal.code}: ${refusal.message}` : err instanceof Error ? err.message : String(err));
  }

  /** The token function threw, rejected or hung: a failed attempt, retried after a backoff (on the same URL). */
  private onTokenError(attempt: Scope, err: unknown): void {
    if (attempt !== this.attempt) return;
    attempt.dispose();
    this.attempt = null;
    this.attemptFailed(`the token function failed: ${err instanceof Error ? err.message : String(err)}`);
  }

  /**
   * The server refused the token. A token function is asked once more (it may refresh) and its
   * answer tried at once; a fixed token, or a second refusal in a row, ends the socket attempts.
   */
  private onUnauthorized(): void {
    if (this.opts.tokens.refreshable && !this.refusedOnce) {
      this.refusedOnce = true;
      return this.openSocket();
    }
    this.socketRefused = true;
    this.refused();
  }

  private attemptFailed(reason: string): void {
    this.failures++;
    if (this._state === 'connecting' && this.opts.longPoll && this.failures >= this.opts.fallbackAfterFailures) {
      this.cancelFallback?.();
      this.cancelFallback = null;
      this.setState('fallback', 'long-poll', TRANSPORT_CODES.fallbackFailures, `${this.failures} socket attempts failed: ${reason}`);
    }
    this.scheduleRetry();
  }

  private onDisconnect(attempt: Scope, reason: string): void {
    if (attempt !== this.attempt) return;
    attempt.dispose();
    this.attempt = null;
    this.socket = null;
    this.setState('connecting', null, TRANSPORT_CODES.socketClosed, reason);
    this.armFallback();
    this.scheduleRetry();
  }

  /**
   * The server refused the token on the socket, and will again: long-poll when allowed (HTTP
   * answers each call with its own code), else stay down. Also on every later `start()` with a
   * fixed token (a token function is asked again there).
   */
  private refused(): void {
    if (!this.opts.longPoll) return this.stop(TRANSPORT_CODES.unauthorized, 'the socket refused the token');
    this.cancelFallback?.();
    this.cancelFallback = null;
    this.setState('fallback', 'long-poll', TRANSPORT_CODES.unauthorized, 'the socket refused the token');
  }

  private clearTimers(): void {
    this.cancelRetry?.();
    this.cancelFallback?.();
    this.cancelRetry = this.cancelFallback = null;
  }

  /** Next socket attempt after a full-jitter backoff; in fallback this keeps probing, at most every `maxReconnectDelay`. */
  private scheduleRetry(): void {
    if (this.scope.disposed || this.cancelRetry || this.socketRefused) return;
    const delay = backoff(Math.max(0, this.failures - 1), this.opts.minReconnectDelay, this.opts.maxReconnectDelay);
    this.cancelRetry = this.scope.timeout(() => {
      this.cancelRetry = null;
      if (this._state !== 'disconnected') this.openSocket();
    }, delay);
  }

  /** Give the socket `fallbackTimeout` to come up before flows switch to long-poll. */
  private armFallback(): void {
    if (!this.opts.longPoll) return;
    this.cancelFallback?.();
    this.cancelFallback = this.scope.timeout(() => {
      this.cancelFallback = null;
      if (this._state === 'connecting') {
        this.setState('fallback', 'long-poll', TRANSPORT_CODES.fallbackTimeout, `no socket within ${this.opts.fallbackTimeout} ms`);
      }
    }, this.opts.fallbackTimeout);
  }

  /** The one place the transport state changes; emits old/new with `{code, reason}`. */
  private setState(state: TransportState, transport: TransportName | null, code: TransportCode, reason: string): void {
    if (this._state === state && this._transport === transport) return;
    const oldState = this._state;
    this._state = state;
    this._transport = transport;
    this.events.emit('transport', { oldState, newState: state, transport, code, reason });
  }
}

/** The catalogue `{code, message}` of a refused connection (`connect_error`'s `err.data`), if it carries one. */
function refusalOf(err: unknown): ConnectErrorData | null {
  return typeof err === 'object' && err !== null ? parseErrorBody((err as { data?: unknown }).data) : null;
}
