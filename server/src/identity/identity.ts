import type { Session } from '@handoff/protocol';
import { HandoffError } from '../errors.js';
import type { FlowRecord } from '../flows/flow-record.js';
import type { UserService } from '../users/user-service.js';
import { decodeProtectedHeader } from 'jose';
import { parsePrincipalKey, type Principal } from './principal.js';

/** Which accounts a deployment accepts (ACCOUNTS): Handoff's own, the app's (its tokens), or both. */
export type AccountsMode = 'builtin' | 'app' | 'both';

/** Anything that tells who a Bearer token names. */
export interface Authenticator {
  /** The principal a token names; `unauthorized` for a missing or bad token. */
  authenticate(token: unknown): Promise<Principal>;
}

/** Verifies the app's own tokens (identity/app-tokens.ts: AppTokenVerifier). */
export interface AppTokens {
  verify(token: unknown): Promise<Principal>;
}

/** Signs the assertions a redeem hands out for app users (identity/assertions.ts: AssertionSigner). */
export interface Assertions {
  sign(principal: Principal, claims: { amr: ['qr'] | ['pwd'] | ['approval']; flow: string }): Promise<{ token: string; expiresAt: string }>;
}

/** Publishes the public keys assertions are verified with (AssertionSigner). */
export interface JwksSource {
  jwks(): { keys: object[] };
}

/**
 * Who people are, whatever accounts the deployment uses: a Bearer token is a built-in session JWT
 * (ACCOUNTS=builtin|both) or the app's own token (ACCOUNTS=app|both); a finished flow hands out a
 * Handoff session to a built-in user and a signed assertion to an app user.
 */
export class Identity implements Authenticator {
  constructor(
    readonly accounts: AccountsMode,
    private readonly users: UserService,
    private readonly appTokens: AppTokens | null,
    private readonly assertions: (Assertions & JwksSource) | null,
  ) {
    if (accounts !== 'builtin' && (!appTokens || !assertions)) throw new Error(`ACCOUNTS=${accounts} needs app tokens and assertions`);
  }

  /** The JWKS document of the assertion keys (current and previous), or null with ACCOUNTS=builtin. */
  jwks(): { keys: object[] } | null {
    return this.assertions?.jwks() ?? null;
  }

  async authenticate(token: unknown): Promise<Principal> {
    // With both kinds, a token signed with a key pair is never a Handoff session (HS256): go straight
    // to the app's verifier instead of failing the built-in check first.
    const builtinFirst = this.accounts === 'builtin' || (this.accounts === 'both' && algOf(token) === 'HS256');
    if (builtinFirst) {
      try {
        const user = await this.users.authenticate(token);
        return { kind: 'builtin', id: user.id, displayName: user.displayName, avatarUrl: user.avatarUrl };
      } catch (err) {
        // Not a Handoff session: with ACCOUNTS=both it may be the app's token. An outage is an outage.
        if (this.accounts === 'builtin' || !(err instanceof HandoffError && err.code === 'unauthorized')) throw err;
      }
    }
    return this.appTokens!.verify(token);
  }

  /**
   * What redeeming a finished flow hands its creator: a built-in user's session (`tokenType:
   * "session"`), or an app user's assertion (`tokenType: "assertion"`), signed for the app's backend.
   */
  async issue(record: FlowRecord): Promise<Session> {
    const { kind, id } = parsePrincipalKey(record.userId ?? '');
    const shown = record.scannedBy ?? record.account;
    const principal: Principal = { kind, id, displayName: shown?.displayName ?? id, avatarUrl: shown?.avatarUrl ?? null };
    return this.issueFor(principal, { amr: record.kind === 'qr' ? ['qr'] : record.kind === 'approval' ? ['approval'] : ['pwd'], flow: `${record.kind}:${record.id}` });
  }

  /**
   * The session (built-in account) or assertion (app user) for a principal. `flow` is the topic
   * the assertion names (a synchronous password login has none: `login`).
   */
  async issueFor(principal: Principal, claims: { amr: ['qr'] | ['pwd'] | ['approval']; flow: string }): Promise<Session> {
    if (principal.kind === 'builtin') return this.users.issueSession(principal.id);
    if (!this.assertions) throw new HandoffError('internal');
    const { token, expiresAt } = await this.assertions.sign(principal, claims);
    const { id, displayName, avatarUrl } = principal;
    return { token, tokenType: 'assertion', expiresAt, user: { id, displayName, avatarUrl } };
  }
}

/** The `alg` a JWT's header names, or null for anything that is no readable JWT. */
function algOf(token: unknown): string | null {
  if (typeof token !== 'string' || token.length > 16_384) return null;
  try {
    const { alg } = decodeProtectedHeader(token);
    return typeof alg === 'string' ? alg : null;
  } catch {
    return null; // not a JWT: every verifier refuses it as unauthorized
  }
}
