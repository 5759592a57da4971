/**
 * Codes the SDK adds to the server's error catalogue, and the `{code, reason}` codes that come
 * with every state change of the client's transport and of a flow subscription.
 */
import type { ErrorCode } from '@handoff/protocol';

/** Error codes raised by the SDK itself (the server's catalogue codes are in `ERRORS` of the protocol). */
export const SDK_ERRORS = {
  /** The flow was cancelled: by the phone that scanned it, or by the browser (`QrLogin.cancel()`, `ApprovalLogin.cancel()`). */
  cancelled: 'The flow was cancelled.',
  /** The flow's time ran out before it was confirmed / succeeded and redeemed. */
  expired: 'The flow expired.',
  /** The approval was denied on the phone (Deny, or a wrong number picked). */
  denied: 'The sign-in request was denied on the phone.',
  /** The async login failed (wrong password, …); `error.state.error` carries the server's reason. */
  failed: 'The login failed.',
  /** A wait or a request gave up: its `timeout` passed. */
  timeout: 'Timed out.',
  /** The caller's AbortSignal fired. */
  aborted: 'Aborted.',
  /** The Handoff client or the flow handle was closed while this was pending. */
  closed: 'The Handoff client was closed.',
  /** The server could not be reached (DNS, refused, reset, socket closed before the answer). */
  network: 'The server could not be reached.',
  /** The server answered something the SDK does not understand. */
  bad_response: 'Unexpected answer from the server.',
} as const satisfies Record<string, string>;

/** An error code raised by the SDK itself. */
export type SdkErrorCode = keyof typeof SDK_ERRORS;

/** Every code a `HandoffError` can carry: the server's catalogue plus the SDK's own. */
export type HandoffErrorCode = ErrorCode | SdkErrorCode;

/** Why the client's transport state changed (the `code` of a `transport` event). */
export const TRANSPORT_CODES = {
  /** A subscription or `connect()` needs the realtime link: disconnected → connecting. */
  connect: 'connect',
  /** The socket is up: → connected. */
  connected: 'connected',
  /** The socket was open and dropped: connected → connecting. */
  socketClosed: 'socket_closed',
  /** No socket within `fallbackTimeout`: connecting → fallback. */
  fallbackTimeout: 'fallback_timeout',
  /** `fallbackAfterFailures` socket attempts in a row failed: connecting → fallback. */
  fallbackFailures: 'fallback_failures',
  /** The server refused the socket's token (`connect_error: unauthorized`): → fallback, no more socket tries. */
  unauthorized: 'unauthorized',
  /** The engine upgraded (polling → websocket); the state stays connected. */
  upgraded: 'upgraded',
  /** Nothing needs the realtime link any more: → disconnected. */
  idle: 'idle',
  /** `close()` was called: → disconnected. */
  closed: 'closed',
} as const;

/** Why the client's transport state changed. */
export type TransportCode = (typeof TRANSPORT_CODES)[keyof typeof TRANSPORT_CODES];

/** Why a flow subscription's state changed (the `code` of a `subscription` event). */
export const SUBSCRIPTION_CODES = {
  /** The handle started watching: unsubscribed → subscribing. */
  subscribe: 'subscribe',
  /** The subscribe ack (socket) or the first read (long-poll) brought the snapshot: → subscribed. */
  subscribed: 'subscribed',
  /** The transport went away or changed; waiting to subscribe again: → subscribing. */
  transportChanged: 'transport_changed',
  /** A read or subscribe failed with a temporary error; retrying with backoff: → subscribing. */
  retrying: 'retrying',
  /** The flow reached a final state: → unsubscribed. */
  final: 'final',
  /** The server refused the subscription for good (not_found, invalid_watch_token, …): → unsubscribed. */
  failed: 'failed',
  /** The handle or the client was closed: → unsubscribed. */
  closed: 'closed',
} as const;

/** Why a flow subscription's state changed. */
export type SubscriptionCode = (typeof SUBSCRIPTION_CODES)[keyof typeof SUBSCRIPTION_CODES];
