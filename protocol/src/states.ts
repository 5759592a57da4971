/** Flow kinds and their state machines (contract §1). */

/** The kinds of flow a client can wait on. */
export type FlowKind = 'qr' | 'login' | 'approval';

export const QR_STATES = ['pending', 'scanned', 'confirmed', 'redeemed', 'cancelled', 'expired'] as const;
export const LOGIN_STATES = ['queued', 'processing', 'succeeded', 'redeemed', 'failed', 'expired'] as const;
/** Push-to-approve (contract §9): the user's phone approves (with number matching) or denies. */
export const APPROVAL_STATES = ['pending', 'approved', 'redeemed', 'denied', 'cancelled', 'expired'] as const;

export type QrState = (typeof QR_STATES)[number];
export type LoginState = (typeof LOGIN_STATES)[number];
export type ApprovalState = (typeof APPROVAL_STATES)[number];
export type FlowStateName = QrState | LoginState | ApprovalState;

/** The state each kind starts in. */
export const INITIAL_STATE: { qr: 'pending'; login: 'queued'; approval: 'pending' } = {
  qr: 'pending',
  login: 'queued',
  approval: 'pending',
};

/** Allowed transitions per kind: `to` → the states it may be reached from. Forward only. */
export const TRANSITIONS: {
  qr: Record<QrState, readonly QrState[]>;
  login: Record<LoginState, readonly LoginState[]>;
  approval: Record<ApprovalState, readonly ApprovalState[]>;
} = {
  qr: {
    pending: [],
    scanned: ['pending'],
    confirmed: ['scanned'],
    redeemed: ['confirmed'],
    cancelled: ['pending', 'scanned'],
    expired: ['pending', 'scanned', 'confirmed'],
  },
  login: {
    queued: [],
    processing: ['queued'],
    succeeded: ['processing'],
    redeemed: ['succeeded'],
    failed: ['processing'],
    expired: ['queued', 'processing', 'succeeded'],
  },
  approval: {
    pending: [],
    approved: ['pending'],
    redeemed: ['approved'],
    denied: ['pending'],
    cancelled: ['pending'],
    expired: ['pending', 'approved'],
  },
};

/** Final states: once reached, nothing moves the flow again; it lingers as a tombstone. */
export const FINAL_STATES: ReadonlySet<FlowStateName> = new Set<FlowStateName>([
  'redeemed',
  'cancelled',
  'expired',
  'failed',
  'denied',
]);

/** True when `state` is final (no transition leaves it). */
export function isFinalState(state: FlowStateName): boolean {
  return FINAL_STATES.has(state);
}

/** The states a flow of `kind` may move to `to` from; empty when `to` is not a state of that kind. */
export function allowedFrom(kind: FlowKind, to: FlowStateName): readonly FlowStateName[] {
  const table = TRANSITIONS[kind] as Record<string, readonly FlowStateName[]>;
  return table[to] ?? [];
}

/** A topic names one flow: `qr:<id>`, `login:<id>` or `approval:<id>`. */
export type Topic = `${FlowKind}:${string}`;

const ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** Parse `qr:<id>` / `login:<id>` / `approval:<id>`; null when it is not a well-formed topic. */
export function parseTopic(topic: unknown): { kind: FlowKind; id: string } | null {
  if (typeof topic !== 'string') return null;
  const sep = topic.indexOf(':');
  if (sep < 0) return null;
  const kind = topic.slice(0, sep);
  const id = topic.slice(sep + 1);
  if ((kind !== 'qr' && kind !== 'login' && kind !== 'approval') || !ID_PATTERN.test(id)) return null;
  return { kind, id };
}

/** Build the topic of a flow. */
export function topicOf(kind: FlowKind, id: string): Topic {
  return `${kind}:${id}`;
}
