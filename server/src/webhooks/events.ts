import { createHash } from 'node:crypto';
import { parsePrincipalKey } from '../identity/principal.js';
import { topicOf, type ErrorBody, type FlowKind, type Requester, type FlowStateName, type Topic } from '@handoff/protocol';
import type { FlowRecord } from '../flows/flow-record.js';

/** The events Handoff sends to backends. */
export const WEBHOOK_EVENT_TYPES = [
  'login.succeeded',
  'login.failed',
  'qr.confirmed',
  'qr.cancelled',
  'approval.requested',
  'approval.approved',
  'approval.denied',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** `data` of every event: the flow, never a watch token, session token or password. */
export interface WebhookEventData {
  topic: Topic;
  id: string;
  kind: FlowKind;
  state: FlowStateName;
  version: number;
  /** The user: the scanner of a qr flow (once scanned), the account of a login flow; for an app user, the app's `sub`. */
  userId?: string;
  /** Whose user `userId` is: `builtin` (a Handoff account) or `app` (the app's `sub`, ACCOUNTS=app|both). */
  account?: 'builtin' | 'app';
  /** login.failed: why. */
  error?: ErrorBody;
  /** approval.requested: who asks (IP, user agent, time), for the mobile push; never the number. */
  requester?: Requester;
  /** approval.requested: what the app's backend attached (server API), if anything. */
  context?: Record<string, unknown>;
  /** approval.requested: when the request expires (ISO 8601). */
  expiresAt?: string;
}

/** The JSON body of a delivery (Standard Webhooks payload structure). */
export interface WebhookPayload {
  type: WebhookEventType;
  /** ISO 8601: when the transition was committed (the same on every retry). */
  timestamp: string;
  data: WebhookEventData;
}

const EVENT_OF: Record<FlowKind, Partial<Record<FlowStateName, WebhookEventType>>> = {
  login: { succeeded: 'login.succeeded', failed: 'login.failed' },
  qr: { confirmed: 'qr.confirmed', cancelled: 'qr.cancelled' },
  // `approval.requested` is raised at creation (webhookPayload on the new record, state `pending`).
  approval: { pending: 'approval.requested', approved: 'approval.approved', denied: 'approval.denied' },
};

/** The event a flow reaching `state` raises, or null when that transition raises none. */
export function webhookEventType(kind: FlowKind, state: FlowStateName): WebhookEventType | null {
  return EVENT_OF[kind]?.[state] ?? null;
}

/** The payload for a committed record, or null when its transition raises no event. */
export function webhookPayload(record: FlowRecord, at: Date = new Date()): WebhookPayload | null {
  const type = webhookEventType(record.kind, record.state);
  if (!type) return null;
  // An approval for an unknown login (POST /v1/approvals) is owned by nobody: nobody to notify.
  if (type === 'approval.requested' && !record.userId) return null;
  const data: WebhookEventData = {
    topic: topicOf(record.kind, record.id),
    id: record.id,
    kind: record.kind,
    state: record.state,
    version: record.version,
  };
  if (record.userId) {
    const { kind, id } = parsePrincipalKey(record.userId);
    data.userId = id;
    data.account = kind;
  }
  if (record.kind === 'login' && record.state === 'failed' && record.error) {
    data.error = { code: record.error.code, message: record.error.message };
  }
  if (type === 'approval.requested') {
    if (record.requester) data.requester = record.requester;
    if (record.context !== undefined) data.context = record.context;
    data.expiresAt = new Date(record.expiresAt).toISOString();
  }
  return { type, timestamp: at.toISOString(), data };
}

/**
 * The `webhook-id` of the event for (topic, version): a transition is committed once, so this is
 * unique per event, identical for every endpoint and every retry, and contains no `.`.
 */
export function webhookMessageId(topic: string, version: number): string {
  return `msg_${createHash('sha256').update(`${topic}#${version}`).digest('base64url').slice(0, 32)}`;
}
