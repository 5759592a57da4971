/**
 * @handoff/client-sdk — the Handoff client: QR login and push-to-approve (browser and phone),
 * async and sync password login, over Socket.IO with an HTTP long-poll fallback. See README.md.
 */
export { Handoff, type ApprovalLoginOptions, type AsyncLoginOptions, type HandoffEvents, type LoginCredentials, type ScanResult } from './handoff.js';
export { QrLogin } from './qr-login.js';
export { ScannedQr } from './scanned-qr.js';
export { AsyncLogin } from './async-login.js';
export { ApprovalLogin } from './approval-login.js';
export { Approvals, type ApprovalsEvents } from './approvals.js';
export { FlowHandle, type FlowEvents } from './flow.js';
export { HandoffError, isHandoffError, type HandoffErrorDetails } from './errors.js';
export {
  SDK_ERRORS,
  SUBSCRIPTION_CODES,
  TRANSPORT_CODES,
  type HandoffErrorCode,
  type SdkErrorCode,
  type SubscriptionCode,
  type TransportCode,
} from './codes.js';
export {
  DEFAULTS,
  type HandoffOptions,
  type HandoffSocket,
  type SocketFactory,
  type SocketFactoryOptions,
  type SocketTransport,
} from './options.js';
export type { TokenFunction, TokenOption, TokenResult } from './token.js';
export type { TransportEvent, TransportName, TransportState } from './connection.js';
export type { SubscriptionEvent, SubscriptionState } from './subscription.js';
export type { FetchLike } from './http.js';
export type { Listener, Unsubscribe } from './emitter.js';
export type { ApprovalRequest, WaitOptions } from './utils.js';

// The protocol's values and types the public API speaks in (bundled into the SDK's builds).
export { ERRORS, FINAL_STATES, LOGIN_STATES, QR_STATES, isFinalState } from '@handoff/protocol';
export type {
  AppUser,
  ErrorBody,
  ErrorCode,
  FlowKind,
  FlowState,
  FlowStateName,
  LoginState,
  PublicUser,
  QrState,
  Requester,
  ScannedBy,
  Session,
  Topic,
} from '@handoff/protocol';
