import type { ErrorBody } from './errors.js';
import type { ApprovalRequest, FlowState, Requester, Session, UserChannelSnapshot } from './state-object.js';

/** Ack payloads: success carries data, failure a catalogue error (and the current state on invalid_transition). */
export type Ack<T extends object = object> = ({ ok: true } & T) | { ok: false; error: ErrorBody; state?: FlowState };

export interface SubscribeRequest {
  topic: string;
  /** Required unless the socket is authenticated as the user who scanned the qr flow. */
  watchToken?: string;
}
export interface TopicRequest {
  topic: string;
}
export interface QrActionRequest {
  id: string;
}
/** `approval:approve` `{id, number}` / `approval:deny` `{id}` (the user's phone). */
export interface ApprovalActionRequest {
  id: string;
  number?: number;
}
export interface RedeemRequest {
  topic: string;
  watchToken: string;
}

/** The user channel's topic (contract §9): an app socket authenticated as user U subscribes to it, no watch token. */
export const USER_TOPIC = 'user:me' as const;

/** `approval:approve` (Socket.IO) / `approval.approve` (ws) / `POST /v1/approvals/{id}/approve`: the number the user picked. */
export interface ApprovalApproveRequest {
  id: string;
  number: number;
}
/** `approval:deny` (Socket.IO) / `approval.deny` (ws) / `POST /v1/approvals/{id}/deny`. */
export interface ApprovalDenyRequest {
  id: string;
}

export type SubscribeAck = Ack<{ state: FlowState }>;
/** Subscribing to `user:me`: the snapshot is the user's pending approvals. */
export type UserChannelAck = Ack<{ state: UserChannelSnapshot }>;
/** The ack of `approval:approve` / `approval:deny`: the flow's new state (a wrong number: `wrong_number`, and the flow is denied). */
export type ApprovalActionAck = Ack<{ state: FlowState }>;
export type UnsubscribeAck = Ack;
export type QrActionAck = Ack<{ state: FlowState; requester?: Requester; context?: Record<string, unknown> }>;
export type RedeemAck = Ack<{ session: Session }>;

/** Socket.IO events a client emits (contract §3). */
export interface ClientToServerEvents {
  /** A flow topic (ack with its state) or `user:me` (ack with the user's pending approvals). */
  subscribe: (req: SubscribeRequest, ack: (res: SubscribeAck | UserChannelAck) => void) => void;
  unsubscribe: (req: TopicRequest, ack: (res: UnsubscribeAck) => void) => void;
  'qr:scan': (req: QrActionRequest, ack: (res: QrActionAck) => void) => void;
  'qr:confirm': (req: QrActionRequest, ack: (res: QrActionAck) => void) => void;
  'qr:cancel': (req: QrActionRequest, ack: (res: QrActionAck) => void) => void;
  redeem: (req: RedeemRequest, ack: (res: RedeemAck) => void) => void;
  'approval:approve': (req: ApprovalApproveRequest, ack: (res: ApprovalActionAck) => void) => void;
  'approval:deny': (req: ApprovalDenyRequest, ack: (res: ApprovalActionAck) => void) => void;
}

/** Why the server asks a client to reconnect elsewhere. */
export interface ReconnectHint {
  reason: 'shutdown';
}

/**
 * The event a node emits to each Socket.IO client just before a graceful shutdown closes its
 * connection, with a `ReconnectHint`: reconnect (to another node) and subscribe again.
 */
export const RECONNECT_HINT_EVENT = 'reconnect' as const;

/** Socket.IO events the server emits. */
export interface ServerToClientEvents {
  /**
   * A flow's state: on subscribe's ack, then on each transition. On the user channel each of the
   * user's approvals, as it is created and as it changes, as an `ApprovalRequest`.
   */
  state: (state: FlowState | ApprovalRequest) => void;
  /** The reconnect hint, sent before a graceful shutdown. */
  [RECONNECT_HINT_EVENT]: (hint: ReconnectHint) => void;
}

/**
 * `err.data` of a Socket.IO `connect_error` when the server refused the connection: a catalogue
 * `{code, message}` (`unauthorized`: the handshake token was refused, and will be again;
 * `unavailable`: the node is shutting down or its store is down: retry, elsewhere). Switch on
 * `code`; the error's `message` is the code too, the human text is `data.message`.
 */
export type ConnectErrorData = ErrorBody;

/** The socket.io handshake `auth` object. */
export interface HandshakeAuth {
  token?: string;
}

/** Plain WebSocket (/v1/ws) client frame types (contract §4). */
export type WsClientFrame =
  | { type: 'auth'; token: string; ref?: string }
  | ({ type: 'subscribe'; ref?: string } & SubscribeRequest)
  | ({ type: 'unsubscribe'; ref?: string } & TopicRequest)
  | ({ type: 'qr.scan' | 'qr.confirm' | 'qr.cancel'; ref?: string } & QrActionRequest)
  | ({ type: 'redeem'; ref?: string } & RedeemRequest)
  | ({ type: 'approval.approve'; ref?: string } & ApprovalApproveRequest)
  | ({ type: 'approval.deny'; ref?: string } & ApprovalDenyRequest);

/** Plain WebSocket server frames. */
export type WsServerFrame =
  | ({ type: 'reply'; ref: string | null; ok: true } & Record<string, unknown>)
  | { type: 'reply'; ref: string | null; ok: false; error: ErrorBody }
  | ({ type: 'state' } & (FlowState | ApprovalRequest));

/** Default maximum WebSocket frame size, bytes (contract §4). */
export const WS_MAX_FRAME_BYTES = 16 * 1024;
/** Server ping interval on /v1/ws, ms; a peer missing two pings is dropped. */
export const WS_PING_INTERVAL_MS = 25_000;
/** Longest long-poll wait the server accepts, seconds. */
export const MAX_LONG_POLL_SECONDS = 30;
/** Header carrying a flow's watch token. */
export const WATCH_TOKEN_HEADER = 'watch-token';
