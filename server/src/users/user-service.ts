import type { PublicUser, Session } from '@handoff/protocol';
import { HandoffError } from '../errors.js';
import { mintUserId } from '../store/keys.js';
import type { Jwt } from './jwt.js';
import type { Passwords } from './passwords.js';
import { normaliseEmail, type UserRecord, type UserStore } from './user-store.js';

/** The user as the API shows it (no hash). */
export function publicUser(user: UserRecord): PublicUser {
  return { id: user.id, email: user.email, displayName: user.displayName, avatarUrl: user.avatarUrl };
}

/** Accounts: creation, password login, sessions and bearer authentication. */
export class UserService {
  constructor(
    readonly store: UserStore,
    private readonly passwords: Passwords,
    private readonly jwt: Jwt,
  ) {}

  /** Stop the password hashing threads (after the last login job has finished). */
  close(): Promise<void> {
    return this.passwords.close();
  }

  /** Create an account; `email_taken` when the email is already registered. */
  async create(input: { email: string; password: string; displayName: string; avatarUrl?: string | null }): Promise<UserRecord> {
    const email = normaliseEmail(input.email);
    const user: UserRecord = {
      // A random id in the email's Redis shard: the account and its email index share a slot.
      id: mintUserId(email),
      email,
      displayName: input.displayName,
      avatarUrl: input.avatarUrl ?? null,
      passwordHash: await this.passwords.hash(input.password),
      createdAt: Date.now(),
    };
    if ((await this.store.create(user)) === 'email_taken') throw new HandoffError('email_taken');
    return user;
  }

  /**
   * The user for these credentials, or `invalid_credentials`. Unknown email and wrong password
   * cost one bcrypt compare each and give the same answer.
   */
  async checkPassword(email: string, password: string): Promise<UserRecord> {
    const user = await this.store.byEmail(normaliseEmail(email));
    const ok = await this.passwords.verify(password, user?.passwordHash ?? null);
    if (!ok || !user) throw new HandoffError('invalid_credentials');
    return user;
  }

  /** A signed session for a user id. */
  async issueSession(userId: string): Promise<Session> {
    const user = await this.store.byId(userId);
    if (!user) throw new HandoffError('not_found', 'The account no longer exists.');
    const { token, expiresAt } = await this.jwt.issue(user.id);
    return { token, tokenType: 'session', expiresAt: expiresAt.toISOString(), user: publicUser(user) };
  }

  /** The user behind a bearer JWT, or `unauthorized`. */
  async authenticate(token: unknown): Promise<UserRecord> {
    const { sub } = await this.jwt.verify(token);
    const user = await this.store.byId(sub);
    if (!user) throw new HandoffError('unauthorized');
    return user;
  }
}
