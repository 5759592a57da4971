import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { HandoffError } from '../errors.js';
import { randomToken } from '../lib/random-token.js';
import type { LoginCodes } from '../login/login-service.js';
import type { Metrics } from '../observability/metrics.js';
import type { Backend } from '../store/backend.js';
import type { Limiter, LimitOptions } from '../lib/rate-limits.js';
import type { JobQueue } from '../queue/job-queue.js';
import type { UserRecord } from '../users/user-store.js';
import type { UserService } from '../users/user-service.js';
import { CodeCrypto, generateCode, isCodeShaped } from './code-crypto.js';
import { createCodeMetrics, type CodeMetrics } from './code-metrics.js';
import { CODES_QUEUE, type CodeJob } from './code-queue.js';
import type { CodeRecord, CodeStore, VerifyResult } from './code-store.js';
import { CODE_CHANNELS, normaliseRecipient, type CodeChannel, type CodePurpose } from './recipients.js';
import { channelConfigured } from './senders.js';

/** Limits and retry policy of verification codes; defaults in DEFAULT_CODE_OPTIONS. */
export interface CodeServiceOptions {
  /** Attempts (right or wrong) one code allows; the one that reaches it burns the code. */
  maxAttempts: number;
  /** Messages one recipient may be sent (any purpose), counted per send. */
  perRecipient: LimitOptions;
  /** Requests one client IP may make, counted per request. */
  perIp: LimitOptions;
  /** Delivery job: total attempts and backoff base (exponential, full jitter). */
  delivery: { attempts: number; backoffMs: number };
}

export const DEFAULT_CODE_OPTIONS: CodeServiceOptions = {
  maxAttempts: 5,
  perRecipient: { points: 5, durationSeconds: 3600 },
  perIp: { points: 30, durationSeconds: 600 },
  delivery: { attempts: 5, backoffMs: 500 },
};

/** What CodeService is built from (core.ts passes it). */
export interface CodeServiceDeps {
  config: Config;
  log: Logger;
  backend: Backend;
  metrics: Metrics;
  users: UserService;
}

export interface CodeRequest {
  channel: CodeChannel;
  to: string;
  purpose: CodePurpose;
}

/** The 202 answer of POST /v1/verification-codes, in seconds. */
export interface CodeSent {
  /** Until the code (new or re-sent) expires. */
  expiresIn: number;
  /** Until the next request for this recipient may send again. */
  resendAfter: number;
}

/**
 * Verification codes: issuing (store + delivery job), checking, and login by code.
 *
 * Enumeration resistance: `request` never looks at accounts. It stores a code and queues a job
 * for every well-formed request, so the answer (202 and its body, the cooldown, the limits) and
 * its cost are the same whether or not the address has an account. The worker decides what to
 * send (startCodeWorker): the code, an "you already have an account" notice, or nothing.
 */
export class CodeService implements LoginCodes {
  readonly crypto: CodeCrypto;
  readonly options: CodeServiceOptions;
  readonly store: CodeStore;
  /** The `codes` delivery queue: this service adds to it, startCodeWorker works it. */
  readonly queue: JobQueue<CodeJob>;
  readonly users: UserService;
  readonly metrics: CodeMetrics;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly perIp: Limiter;
  private readonly perRecipient: Limiter;

  constructor(deps: CodeServiceDeps, options: Partial<CodeServiceOptions> = {}) {
    const { config, backend } = deps;
    this.options = { ...DEFAULT_CODE_OPTIONS, ...options };
    this.config = config;
    this.log = deps.log;
    this.store = backend.codes;
    // Sensitive: in embedded mode the producer (API) and the worker share this very queue object.
    this.queue = backend.queues.create<CodeJob>(CODES_QUEUE, { sensitive: true });
    this.users = deps.users;
    this.crypto = new CodeCrypto(config.jwtSecret);
    this.metrics = createCodeMetrics(deps.metrics.registry);
    this.perIp = backend.limits.create('code-ip', this.options.perIp);
    this.perRecipient = backend.limits.create('code-recipient', this.options.perRecipient);
    for (const channel of CODE_CHANNELS) {
      if (!channelConfigured(config, channel)) {
        this.log.warn({ channel }, `${channel} verification codes are disabled: ${channel === 'email' ? 'SMTP_URL' : 'SMS_WEBHOOK_URL'} is not set (NODE_ENV=production); requests answer 503`);
      }
    }
  }

  /**
   * Send a code to `to` (or re-send the live one), for POST /v1/verification-codes.
   * 400 bad recipient, 429 cooldown / send limits (Retry-After), 503 channel not configured.
   */
  async request(input: CodeRequest, ip: string): Promise<CodeSent> {
    const { channel, purpose } = input;
    const to = normaliseRecipient(channel, input.to);
    if (!channelConfigured(this.config, channel)) {
      throw new HandoffError('unavailable', `Verification codes by ${channel} are not configured on this server.`);
    }
    await this.perIp.consume(ip);

    const key = this.crypto.recordKey(purpose, channel, to);
    const resendMs = this.config.codeResendSeconds * 1000;
    // Cooldown first, so that asking too early spends no point of the per-recipient limit.
    const current = await this.store.get(key);
    const now = Date.now();
    if (current && now < current.lastSentAt + resendMs) throw this.cooldown(channel, purpose, current.lastSentAt + resendMs - now);
    await this.perRecipient.consume(this.crypto.recipientId(channel, to));

    const code = generateCode();
    const generation = randomToken();
    const result = await this.store.issue(key, {
      now,
      ttlMs: this.config.codeTtlSeconds * 1000,
      resendMs,
      maxAttempts: this.options.maxAttempts,
      generation,
      hash: this.crypto.hash(key, code),
      sealed: this.crypto.seal(code, key, generation),
    });
    if (result.outcome === 'cooldown') throw this.cooldown(channel, purpose, result.retryAfterMs);

    try {
      await this.queue.add(
        { purpose, channel, to, generation: result.generation },
        { attempts: this.options.delivery.attempts, backoffMs: this.options.delivery.backoffMs },
      );
    } catch (err) {
      // Nothing will be sent: undo the send just recorded, so the client's retry is not refused by
      // the cooldown. (If the store is unreachable too, the cooldown stays: at most resendSeconds.)
      const sent = { generation: result.generation, sentAt: now, resendMs, previousSentAt: result.outcome === 'resent' ? result.previousSentAt : undefined };
      await this.store.withdraw(key, sent).catch((e: Error) => this.log.warn({ err: e.message, channel, purpose }, 'could not withdraw a code whose message was not queued'));
      throw err;
    }
    this.metrics.requests.inc({ channel, purpose, outcome: result.outcome });
    return {
      expiresIn: Math.max(0, Math.floor((result.expiresAt - now) / 1000)),
      resendAfter: this.config.codeResendSeconds,
    };
  }

  /**
   * Check a code for (purpose, channel, to); on a match it is used up. Never throws for a bad
   * code or recipient: the result says why it failed (callers answer one error for all).
   */
  async check(purpose: CodePurpose, channel: CodeChannel, to: string, code: unknown): Promise<VerifyResult> {
    let recipient: string;
    try {
      recipient = normaliseRecipient(channel, to);
    } catch {
      return 'missing';
    }
    if (!isCodeShaped(code)) return 'missing';
    const key = this.crypto.recordKey(purpose, channel, recipient);
    const result = await this.store.verify(key, {
      hash: this.crypto.hash(key, code),
      now: Date.now(),
      maxAttempts: this.options.maxAttempts,
    });
    this.metrics.verifications.inc({ purpose, result });
    return result;
  }

  /** True when the code matched (and is now used up). */
  async verify(purpose: CodePurpose, channel: CodeChannel, to: string, code: unknown): Promise<boolean> {
    return (await this.check(purpose, channel, to, code)) === 'ok';
  }

  /** LoginCodes: the user whose valid login code this is; every failure is `invalid_credentials`. */
  async verifyLogin(email: string, code: string): Promise<UserRecord> {
    if (typeof email !== 'string' || !(await this.verify('login', 'email', email, code))) {
      throw new HandoffError('invalid_credentials', 'The email or code is wrong, expired or used up.');
    }
    const user = await this.users.store.byEmail(normaliseRecipient('email', email));
    if (!user) throw new HandoffError('invalid_credentials', 'The email or code is wrong, expired or used up.');
    return user;
  }

  /** The stored record of (purpose, channel, to), for operators and tests; never the code. */
  async inspect(purpose: CodePurpose, channel: CodeChannel, to: string): Promise<CodeRecord | null> {
    return this.store.get(this.crypto.recordKey(purpose, channel, normaliseRecipient(channel, to)));
  }

  private cooldown(channel: CodeChannel, purpose: CodePurpose, retryAfterMs: number): HandoffError {
    this.metrics.requests.inc({ channel, purpose, outcome: 'cooldown' });
    return new HandoffError('rate_limited', 'A code was sent to this address moments ago; wait before asking again.', {
      retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    });
  }
}
