import { createHash, timingSafeEqual } from 'node:crypto';

/** hex SHA-256 of a watch token; only this is stored. */
export function hashWatchToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time check of a presented watch token against the stored hash. */
export function watchTokenMatches(presented: string | undefined, storedHash: string): boolean {
  if (typeof presented !== 'string' || presented.length === 0 || presented.length > 256) return false;
  const a = Buffer.from(hashWatchToken(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
