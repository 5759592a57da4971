import { randomBytes } from 'node:crypto';
import type { Handoff } from '../handoff.js';
import { seedUsers } from './seed-users.js';

/** The demo account seeded in embedded mode so `npm start` gives a working demo. */
export const DEMO_EMAIL = 'ana@example.com';

/**
 * Create the demo user (DEMO_PASSWORD or a random one); returns how to sign in, for the caller to
 * print once the server listens (null when the user already existed).
 */
export async function seedDemoUser(handoff: Handoff): Promise<string | null> {
  const password = process.env.DEMO_PASSWORD || randomBytes(9).toString('base64url');
  if (await handoff.users.store.byEmail(DEMO_EMAIL)) return null;
  await seedUsers(handoff.users, [{ email: DEMO_EMAIL, password, displayName: 'Ana' }]);
  return `\n  Demo user: ${DEMO_EMAIL}  password: ${password}\n`;
}
