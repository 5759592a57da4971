import { randomBytes } from 'node:crypto';

/** A new random id or secret: 24 random bytes (192 bits), base64url. */
export function randomToken(): string {
  return randomBytes(24).toString('base64url');
}
