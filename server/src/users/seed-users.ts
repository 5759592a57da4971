import { ConfigError } from '../lib/env.js';
import { HandoffError } from '../errors.js';
import type { UserService } from './user-service.js';

/** One account to seed at start. */
export interface SeedUser {
  email: string;
  password: string;
  displayName: string;
}

/**
 * Parse SEED_USERS: comma-separated `email:password:Display Name` entries. Meant for
 * development, demos and tests (embedded mode has no other way to hold accounts across a CLI).
 */
export function parseSeedUsers(raw: string | undefined): SeedUser[] {
  if (!raw?.trim()) return [];
  return raw.split(',').map((entry) => {
    const [email, password, ...name] = entry.trim().split(':');
    if (!email || !password) throw new ConfigError('SEED_USERS', 'each entry is email:password:Display Name');
    return { email, password, displayName: name.join(':') || email.split('@')[0] };
  });
}

/** Create each seed user unless the email exists already (several nodes may seed at once). */
export async function seedUsers(users: UserService, seeds: SeedUser[]): Promise<void> {
  for (const seed of seeds) {
    try {
      await users.create(seed);
    } catch (err) {
      if (!(err instanceof HandoffError && err.code === 'email_taken')) throw err;
    }
  }
}
