import {
  LOGIN_STATES,
  QR_STATES,
  isErrorCode,
  isFinalState,
  type ErrorBody,
  type FlowKind,
  type FlowState,
  type Requester,
  type Session,
} from '@handoff/protocol';
import { HandoffError } from './errors.js';
import type { Scope } from './scope.js';

/**
 * Full-jitter exponential backoff (as in centrifuge-js): a delay drawn uniformly from
 * `[min, min(max, min + min·2^attempt)]`, so attempt 0 waits 0.5–1 s with the defaults
 * (min 500 ms, max 20 s), attempt 5 up to 16.5 s, and no delay ever exceeds `max`.
 */
export function backoff(attempt: number, min: number, max: number, random: () => number = Math.random): number {
  const step = Math.min(Math.max(0, attempt), 31);
  const spread = Math.min(max, min * 2 ** step);
  return Math.min(max, min + Math.floor(random() * (spread + 1)));
}

/** The wait before retry `attempt` after a temporary error: full-jitter backoff, at least its Retry-After. */
export function retryDelay(err: HandoffError, attempt: number, opts: { minReconnectDelay: number; maxReconnectDelay: number }): number {
  return Math.max(backoff(attempt, opts.minReconnectDelay, opts.maxReconnectDelay), (err.retryAfter ?? 0) * 1000);
}

/** `Retry-After` as seconds (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** Options of everything that waits. */
export interface WaitOptions {
  /** Abort the wait (rejects with `aborted`); the operation itself goes on where that makes sense. */
  signal?: AbortSignal;
  /** Give up after this many ms (rejects with `timeout`). */
  timeout?: number;
}

/** How a wait ended. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Wait for what `start` reports, racing `opts.signal` (→ `aborted`), `opts.timeout`
 * (→ `timeout`) and the disposal of `scope` (→ `closed`). `start` gets the settle function and
 * may return a cleanup; the timer, the listeners and the cleanup go away as soon as the race is
 * decided, and `start`'s report settles synchronously (no disposal can overtake it).
 */
export function raceWait<T>(
  scope: Scope,
  opts: WaitOptions,
  start: (settle: (outcome: Settled<T>) => void) => (() => void) | void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const race = scope.child();
    let done = false;
    const finish = (outcome: Settled<T>): void => {
      if (done) return;
      done = true;
      race.dispose();
      if (outcome.ok) resolve(outcome.value);
      else reject(outcome.error);
    };
    if (race.disposed) return finish({ ok: false, error: new HandoffError('closed') });
    if (opts.signal?.aborted) return finish({ ok: false, error: new HandoffError('aborted', undefined, { cause: opts.signal.reason }) });
    race.add(() => finish({ ok: false, error: new HandoffError('closed') }));
    race.onAbort(opts.signal, () => finish({ ok: false, error: new HandoffError('aborted', undefined, { cause: opts.signal?.reason }) }));
    if (opts.timeout !== undefined && Number.isFinite(opts.timeout)) {
      race.timeout(() => finish({ ok: false, error: new HandoffError('timeout') }), opts.timeout);
    }
    const cleanup = start(finish);
    if (cleanup) race.add(cleanup);
  });
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The states of an `approval` flow (contract §9). */
const APPROVAL_STATE_NAMES = ['pending', 'approved', 'redeemed', 'denied', 'cancelled', 'expired'] as const;
const STATE_NAMES: ReadonlySet<string> = new Set<string>([...QR_STATES, ...LOGIN_STATES, ...APPROVAL_STATE_NAMES]);
const KINDS: ReadonlySet<unknown> = new Set<unknown>(['qr', 'login', 'approval']);

/**
 * True when `state` is final: the protocol's final states, and an approval's `denied` (named here
 * too, so that an SDK built against an older protocol package still ends a denied approval).
 */
export function isEnded(state: string): boolean {
  return state === 'denied' || isFinalState(state as FlowState['state']);
}

/** Narrow a state object received from the server; null when it is not one. */
export function parseFlowState(x: unknown): FlowState | null {
  if (!isObject(x)) return null;
  const { topic, kind, id, state, version, expiresAt } = x;
  if (!KINDS.has(kind)) return null;
  if (typeof topic !== 'string' || typeof id !== 'string' || topic !== `${kind}:${id}`) return null;
  if (typeof state !== 'string' || !STATE_NAMES.has(state)) return null;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) return null;
  if (typeof expiresAt !== 'string') return null;
  if (x.position !== undefined && typeof x.position !== 'number') return null;
  // Only the contract's fields: extra keys (e.g. `watchToken`, `requester` of a creation or scan answer) are left out.
  const out: FlowState = { topic: topic as FlowState['topic'], kind: kind as FlowKind, id, state: state as FlowState['state'], version, expiresAt };
  if (isObject(x.scannedBy)) out.scannedBy = x.scannedBy as unknown as NonNullable<FlowState['scannedBy']>;
  if (typeof x.position === 'number') out.position = x.position;
  const error = parseErrorBody(x.error);
  if (error) out.error = error;
  return out;
}

/** Narrow `{code, message}`. */
export function parseErrorBody(x: unknown): ErrorBody | null {
  if (!isObject(x) || !isErrorCode(x.code)) return null;
  return { code: x.code, message: typeof x.message === 'string' ? x.message : '' };
}

/**
 * Narrow a redeemed session, returned as the server sent it: `tokenType` `'session'` (a built-in
 * user, with an email) or `'assertion'` (an app user: id, displayName, avatarUrl). A server from
 * before `tokenType` only ever issued session tokens: its answer is read as `'session'`.
 */
export function parseSession(x: unknown): Session | null {
  if (!isObject(x) || typeof x.token !== 'string' || typeof x.expiresAt !== 'string' || !isObject(x.user)) return null;
  const u = x.user;
  if (typeof u.id !== 'string' || typeof u.displayName !== 'string') return null;
  const tokenType = x.tokenType ?? 'session';
  if (tokenType === 'session' && typeof u.email === 'string') return { ...x, tokenType } as unknown as Session;
  if (tokenType === 'assertion' && (u.avatarUrl === undefined || u.avatarUrl === null || typeof u.avatarUrl === 'string')) {
    return { ...x, tokenType } as unknown as Session;
  }
  return null;
}

/** Narrow who is asking (scan answer). */
export function parseRequester(x: unknown): Requester | null {
  if (!isObject(x) || typeof x.ip !== 'string' || typeof x.userAgent !== 'string' || typeof x.createdAt !== 'string') return null;
  return { ip: x.ip, userAgent: x.userAgent, createdAt: x.createdAt };
}

/**
 * One of the user's approvals as the phone sees it (contract §9): the approval's state object (its
 * own topic, `approval:<id>`), who asks (`nearby`: a proximity hint, never a proof), the app
 * backend's `context` if any, and `choices`: three 2-digit numbers, the browser's among them.
 */
export interface ApprovalRequest extends FlowState {
  requester: Requester & { nearby?: 'same-ip' | 'same-network' | null };
  context?: Record<string, unknown>;
  choices: number[];
}

/**
 * Narrow an approval as the user channel pushes it (contract §9): an `approval` state object plus
 * `requester`, `choices` (three 2-digit numbers) and, when the app's backend gave one, `context`.
 * The channel shows it under its topic `user:me`: the request keeps its own, `approval:<id>`.
 * Null when it is not one.
 */
export function parseApprovalRequest(x: unknown): ApprovalRequest | null {
  const onChannel = isObject(x) && x.topic === 'user:me' && typeof x.id === 'string';
  const state = parseFlowState(onChannel ? { ...(x as Record<string, unknown>), topic: `approval:${x.id as string}` } : x);
  if (!state || (state.kind as string) !== 'approval' || !isObject(x)) return null;
  const requester = parseRequester(x.requester);
  const choices = x.choices;
  if (!requester || !Array.isArray(choices) || choices.length !== 3) return null;
  if (!choices.every((c): c is number => typeof c === 'number' && Number.isInteger(c) && c >= 0 && c <= 99)) return null;
  const nearby = isObject(x.requester) ? x.requester.nearby : undefined;
  const out: ApprovalRequest = {
    ...state,
    requester: nearby === 'same-ip' || nearby === 'same-network' || nearby === null ? { ...requester, nearby } : requester,
    choices: [...choices],
  };
  if (isObject(x.context)) out.context = x.context;
  return out;
}

/** Throw `bad_response` unless `value` is non-null. */
export function expectShape<T>(value: T | null, what: string): T {
  if (value === null) throw new HandoffError('bad_response', `Unexpected ${what} from the server.`);
  return value;
}
