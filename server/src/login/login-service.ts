import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { HandoffError } from '../errors.js';
import type { FlowRecord } from '../flows/flow-record.js';
import type { FlowService } from '../flows/flow-service.js';
import type { Limiter } from '../lib/rate-limits.js';
import type { Job, JobQueue } from '../queue/job-queue.js';
import type { Fanout } from '../realtime/fanout.js';
import type { Backend } from '../store/backend.js';
import type { CredentialsClient } from '../identity/credentials-client.js';
import { principalKey, type Principal } from '../identity/principal.js';
import type { UserService } from '../users/user-service.js';
import { normaliseEmail, type UserRecord } from '../users/user-store.js';
import type { LoginCounters } from './login-counters.js';
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

/** Checks login codes (the verification-codes capability, CodeService, is one). */
export interface LoginCodes {
  /**
   * The user whose valid login code this is; the code is used up. Any failure (unknown email,
   * wrong, expired or burned code) throws `invalid_credentials`, the same answer for all.
   */
  verifyLogin(email: string, code: string): Promise<UserRecord>;
}

/** What LoginService is built from (core.ts passes it). */
export interface LoginServiceDeps {
  config: Config;
  log: Logger;
  backend: Backend;
  fanout: Fanout;
  flows: FlowService;
  users: UserService;
  codes: LoginCodes;
  /** CREDENTIALS_URL: passwords are checked by the app instead of Handoff's own accounts. */
  credentials?: CredentialsClient | null;
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
  private readonly flows: FlowService;
  private readonly users: UserService;
  private readonly codes: LoginCodes;
  private readonly credentials: CredentialsClient | null;
  private readonly fanout: Fanout;
  private readonly config: Config;
  private readonly log: Logger;

  constructor(deps: LoginServiceDeps) {
    const { config, backend } = deps;
    this.config = config;
    this.log = deps.log;
    this.flows = deps.flows;
    this.users = deps.users;
    this.codes = deps.codes;
    this.credentials = deps.credentials ?? null;
    this.fanout = deps.fanout;
    this.queue = backend.queues.create<LoginJob>('logins', { sensitive: true });
    this.counters = backend.loginCounters;
    this.sealer = new CredentialSealer(config.jwtSecret);
    this.perIp = backend.limits.create('login-ip', { points: config.loginIpPerMinute, durationSeconds: 60 });
    this.failures = backend.limits.create('login-fail', {
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
  async verify(email: string, credentials: Credentials, admission: Admission): Promise<Principal> {
    const key = normaliseEmail(email);
    try {
      const user = await this.check(email, credentials);
      if (admission.hadFailures) await this.failures.reset(key);
      return user;
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'invalid_credentials') {
        // Over the limit, this attempt still answers invalid_credentials; the next ones are refused.
        await this.failures.consume(key).catch((e: Error) => this.log.debug({ err: e.message }, 'could not count a failed login'));
      }
      throw err;
    }
  }

  /** Queue an async login: a `login` flow in `queued` with its ticket, and a job for the workers. */
  async enqueue(email: string, credentials: Credentials, admission: Admission): Promise<{ record: FlowRecord; watchToken: string }> {
    const seq = await this.counters.nextTicket();
    const created = await this.flows.create('login', this.config.loginTtlSeconds * 1000, { seq });
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
    const { flows, fanout } = this;
    const { flowId, email } = job.data;
    const taken = await this.counters.markTaken(flowId);
    if (taken !== null) fanout.signal(LOGIN_TAKEN_SIGNAL, { taken });
    try {
      await flows.transition('login', flowId, 'processing');
    } catch (err) {
      const resumable = err instanceof HandoffError && err.code === 'invalid_transition' && err.extra.state?.state === 'processing';
      if (!resumable) return; // expired, gone or finished: nothing left to do
    }
    let user: Principal | null = null;
    let failure: HandoffError | null = null;
    try {
      user = await this.verify(email, this.sealer.open(job.data.sealed), { hadFailures: job.data.hadFailures ?? true });
    } catch (err) {
      if (!(err instanceof HandoffError) || err.code === 'unavailable' || err.code === 'internal') throw err; // retried
      failure = err;
    }
    try {
      if (user) {
        // An app user (CREDENTIALS_URL) keeps how the app names them, for the assertion a redeem signs.
        const account = user.kind === 'app' ? { account: { displayName: user.displayName, avatarUrl: user.avatarUrl } } : {};
        await flows.transition('login', flowId, 'succeeded', { patch: { userId: principalKey(user), ...account } });
      }
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
        this.log.error({ flowId: job.data.flowId, err: err.message }, 'login job failed for good');
        this.flows
          .transition('login', job.data.flowId, 'failed', { patch: { error: new HandoffError('unavailable').toBody() } })
          // Lost the race (expired, finished elsewhere) or the store is down: the flow expires by itself.
          .catch((e: Error) => this.log.debug({ flowId: job.data.flowId, err: e.message }, 'could not mark a failed login job failed'));
      },
    });
  }

  /** Who the credentials prove: the app's answer (CREDENTIALS_URL), else a built-in account. */
  private async check(login: string, credentials: Credentials): Promise<Principal> {
    if ('password' in credentials && this.credentials) {
      const principal = await this.credentials.check(login, credentials.password);
      if (!principal) throw new HandoffError('invalid_credentials');
      return principal;
    }
    const user =
      'password' in credentials ? await this.users.checkPassword(login, credentials.password) : await this.codes.verifyLogin(login, credentials.code);
    return builtinPrincipal(user);
  }
}

/** A built-in account as a Principal. */
export function builtinPrincipal(user: UserRecord): Principal {
  return { kind: 'builtin', id: user.id, displayName: user.displayName, avatarUrl: user.avatarUrl };
}
