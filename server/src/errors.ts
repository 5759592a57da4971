import { ERRORS, type ErrorBody, type ErrorCode, type FlowState } from '@handoff/protocol';
import { ReplyError } from 'ioredis';

/**
 * The one error class every layer throws. Transports turn it into their own shape with
 * `toBody()`: the HTTP error body, a Socket.IO ack, a WebSocket reply.
 */
export class HandoffError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    /** Extra fields for the body, e.g. `state` on invalid_transition, `retryAfter` on rate_limited. */
    readonly extra: { state?: FlowState; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.name = 'HandoffError';
    this.status = ERRORS[code].status;
    Object.setPrototypeOf(this, new.target.prototype);
  }

  /** `{code, message}` as carried by every transport. */
  toBody(): ErrorBody {
    return { code: this.code, message: this.message };
  }
}

/**
 * A store command that got no answer: the connection was down or closed, the command timed out,
 * or it could not be sent. Raised for Handoff's own Redis connections (store/backend.ts turns
 * every failure that is not Redis's own reply into one), so an outage is told from a bug by class.
 * The message is the client's own; `cause` is the original error.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'ESTOREUNAVAILABLE';

  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'StoreUnavailableError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/**
 * Redis's error replies that mean "not now" rather than "wrong command": a failover or restart is
 * under way (READONLY: a demoted master; LOADING; MASTERDOWN; CLUSTERDOWN; TRYAGAIN while a slot
 * moves) or the server refuses writes for a while (NOREPLICAS under min-replicas-to-write, MISCONF
 * when it cannot persist). The code is the reply's first word, as RESP defines it.
 */
const OUTAGE_REPLY = /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/;

/**
 * True for a Redis error reply (a ReplyError: Redis's own answer, not a look-alike message) that
 * is an outage (OUTAGE_REPLY), also an EXECABORT whose queued commands were refused for such a
 * reason (ioredis keeps them as `previousErrors`). Answered 503 like a lost connection, never 500.
 */
export function isOutageReply(err: unknown): boolean {
  if (!(err instanceof ReplyError)) return false;
  const reply = err as Error & { previousErrors?: unknown };
  if (OUTAGE_REPLY.test(reply.message)) return true;
  const previous = reply.previousErrors;
  return (
    /^EXECABORT\b/.test(reply.message) &&
    Array.isArray(previous) &&
    previous.length > 0 &&
    previous.every((e) => e instanceof StoreUnavailableError || (e instanceof ReplyError && OUTAGE_REPLY.test((e as Error).message)))
  );
}

/**
 * A store command's error as its caller sees it: Redis's own reply stays itself (a wrong command is
 * a bug: 500) unless it is an outage reply; anything else (no answer: the connection was closed or
 * down, a timeout, nothing could be sent) is a StoreUnavailableError (503). The one rule of the
 * Redis watch (store/backend.ts) and execPipeline (store/redis-connection.ts).
 */
export function toStoreError(err: unknown): Error {
  if (err instanceof StoreUnavailableError) return err;
  if (err instanceof ReplyError && !isOutageReply(err)) return err as Error;
  return new StoreUnavailableError(err);
}

/** Socket error codes that mean the store could not be reached. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Map anything thrown to a HandoffError; unknown errors become `internal` (never leaking details). */
export function toHandoffError(err: unknown): HandoffError {
  if (err instanceof HandoffError) return err;
  if (isStoreDown(err)) return new HandoffError('unavailable');
  return new HandoffError('internal');
}

/**
 * True for errors that mean the store is unreachable, known by their class or code, never by
 * their message: a StoreUnavailableError, a socket error (ECONNREFUSED, ECONNRESET, …), or a
 * Redis error reply whose code (its first word) says a failover is under way (isOutageReply).
 */
export function isStoreDown(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  // A MULTI a library runs itself (rate-limiter-flexible) ends as EXECABORT after the watch has
  // seen each reply: its outage is known here, the last place before the answer.
  if (isOutageReply(err)) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}
