import { HandoffError } from '../errors.js';
import type { Core } from '../core.js';
import type { FlowRecord } from '../flows/flow-record.js';
import type { LoginCodes } from '../handoff.js';
import type { Limiter } from '../lib/rate-limits.js';
import type { Job, JobQueue } from '../queue/job-queue.js';
import { normaliseEmail, type UserRecord } from '../users/user-store.js';
import { MemoryLoginCounters, RedisLoginCounters, type LoginCounters } from './login-counters.js';
import { LOGIN_TAKEN_SIGNAL } from './login-positions.js';
import { CredentialSealer, type Credentials } from './sealed-credentials.js';

/** What an async login job carries. The credentials are sealed (see CredentialSealer). */
export interface LoginJob {
  flowId: string;
  email: string;
  sealed: string;
  /** Whether the account had failed logins when this one was admitted (absent: assume it had). */
  hadFailures?: boolean;
}

/** What admission found out: whether the account has failed logins counted against it. */
export interface Admission {
  hadFailures: boolean;
}

/**
 * Password and code logins, synchronous or through the login queue. The same verification runs
 * in both paths; brute-force limits apply before either.
 */
export class LoginService {
  readonly queue: JobQueue<LoginJob>;
  readonly counters: LoginCounters;
  private readonly sealer: CredentialSealer;
  private readonly perIp: Limiter;
  private readonly failures: Limiter;

  constructor(
    private readonly core: Core,
    /** Login codes, once that capability is attached. */
    private readonly codes: () => LoginCodes | null,
  ) {
    const { config, backend } = core;
    this.queue = core.queues.create<LoginJob>('logins', { sensitive: true });
    this.counters = backend.redis ? new RedisLoginCounters(backend.redis.client, backend.keys) : new MemoryLoginCounters();
    this.sealer = new CredentialSealer(config.jwtSecret);
    this.perIp = core.limits.create('login-ip', { points: config.loginIpPerMinute, durationSeconds: 60 });
    this.failures = core.limits.create('login-fail', {
      points: config.loginMaxFailures,
      durationSeconds: config.loginLockoutSeconds,
      blockSeconds: config.loginLockoutSeconds,
    });
  }

  /**
   * Before any attempt: spend the client IP's budget, and refuse an account that is locked out.
   * The lockout is keyed by the email whether or not an account exists, so it reveals nothing.
   */
  async admit(ip: string, email: string): Promise<Admission> {
    await this.perIp.consume(ip);
    const { used, retryAfterSeconds } = await this.failures.status(normaliseEmail(email));
    if (retryAfterSeconds > 0) throw new HandoffError('rate_limited', 'Too many failed logins; retry later.', { retryAfterSeconds });
    return { hadFailures: used > 0 };
  }

  /**
   * Verify credentials; a failure counts against the account and throws `invalid_credentials`. A
   * success clears the account's failures, when admission saw any: most logins have none, and
   * skipping the reset saves a store round trip. (A failure that lands between admission and this
   * success then stays counted until its window ends: stricter, never looser.)
   */
  async verify(email: string, credentials: Credentials, admission: Admission): Promise<UserRecord> {
    const key = normaliseEmail(email);
    try {
      const user = await this.check(email, credentials);
      if (admission.hadFailures) await this.failures.reset(key);
      return user;
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'invalid_credentials') {
        // Over the limit, this attempt still answers invalid_credentials; the next ones are refused.
        await this.failures.consume(key).catch(() => {});
      }
      throw err;
    }
  }

  /** Queue an async login: a `login` flow in `queued` with its ticket, and a job for the workers. */
  async enqueue(email: string, credentials: Credentials, admission: Admission): Promise<{ record: FlowRecord; watchToken: string }> {
    if ('code' in credentials && !this.codes()) throw codeLoginUnavailable();
    const seq = await this.counters.nextTicket();
    const created = await this.core.flows.create('login', this.core.config.loginTtlSeconds * 1000, { seq });
    await this.queue.add(
      { flowId: created.record.id, email, sealed: this.sealer.seal(credentials), hadFailures: admission.hadFailures },
      { jobId: created.record.id, attempts: 3, backoffMs: 200 },
    );
    return created;
  }

  /**
   * Run one login job: count it taken (positions move), queued → processing, verify, then
   * succeeded (with the user) or failed (with the reason). Safe to run again after a crash: a
   * flow already `processing` is verified again; anything later is left alone. A job whose flow
   * passed its TTL while waiting ends `expired` (the transition expires it), never silently.
   */
  async process(job: Job<LoginJob>): Promise<void> {
    const { flows, fanout } = this.core;
    const { flowId, email } = job.data;
    const taken = await this.counters.markTaken(flowId);
    if (taken !== null) fanout.signal(LOGIN_TAKEN_SIGNAL, { taken });
    try {
      await flows.transition('login', flowId, 'processing');
    } catch (err) {
      const resumable = err instanceof HandoffError && err.code === 'invalid_transition' && err.extra.state?.state === 'processing';
      if (!resumable) return; // expired, gone or finished: nothing left to do
    }
    let user: UserRecord | null = null;
    let failure: HandoffError | null = null;
    try {
      user = await this.verify(email, this.sealer.open(job.data.sealed), { hadFailures: job.data.hadFailures ?? true });
    } catch (err) {
      if (!(err instanceof HandoffError) || err.code === 'unavailable' || err.code === 'internal') throw err; // retried
      failure = err;
    }
    try {
      if (user) await flows.transition('login', flowId, 'succeeded', { patch: { userId: user.id } });
      else await flows.transition('login', flowId, 'failed', { patch: { error: failure!.toBody() } });
    } catch (err) {
      if (!(err instanceof HandoffError && (err.code === 'invalid_transition' || err.code === 'not_found'))) throw err;
    }
  }

  /** Start this process's login workers. */
  startWorker(concurrency: number): void {
    this.queue.work((job) => this.process(job), {
      concurrency,
      onFailed: (job, err) => {
        this.core.log.error({ flowId: job.data.flowId, err: err.message }, 'login job failed for good');
        void this.core.flows.transition('login', job.data.flowId, 'failed', {
          patch: { error: new HandoffError('unavailable').toBody() },
        }).catch(() => {});
      },
    });
  }

  private check(email: string, credentials: Credentials): Promise<UserRecord> {
    if ('password' in credentials) return this.core.users.checkPassword(email, credentials.password);
    const codes = this.codes();
    if (!codes) throw codeLoginUnavailable();
    return codes.verifyLogin(email, credentials.code);
  }
}

function codeLoginUnavailable(): HandoffError {
  return new HandoffError('bad_request', 'Login by code is not available on this server.');
}
