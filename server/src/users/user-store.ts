/** A user account as stored. */
export interface UserRecord {
  id: string;
  /** Lower-cased, trimmed. */
  email: string;
  displayName: string;
  avatarUrl: string | null;
  /** bcrypt hash. */
  passwordHash: string;
  createdAt: number;
}

/** Where users live: MemoryUserStore (embedded) or RedisUserStore. Same behaviour. */
export interface UserStore {
  /** Create the user unless the email is taken (atomic). */
  create(user: UserRecord): Promise<'created' | 'email_taken'>;
  byEmail(email: string): Promise<UserRecord | null>;
  byId(id: string): Promise<UserRecord | null>;
}

/** Normalise an email for lookups: trimmed, lower-cased. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}
