import { createSecretKey, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { HandoffError } from '../errors.js';

/** Session JWT claims Handoff issues. */
export interface SessionClaims {
  /** The user id. */
  sub: string;
}

/** Issues and verifies HS256 session JWTs with pinned algorithm, issuer, audience and expiry. */
export class Jwt {
  /** Imported once: jose would import raw secret bytes again on every sign and verify. */
  private readonly key: KeyObject;

  constructor(
    secret: string,
    private readonly issuer: string,
    private readonly audience: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  /** A signed token for `userId`, with its expiry. */
  async issue(userId: string): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + this.ttlSeconds;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(this.key);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /** The claims of a valid token; throws `unauthorized` for anything else (alg none, forged, expired, wrong aud). */
  async verify(token: unknown): Promise<SessionClaims> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 4096) throw new HandoffError('unauthorized');
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: this.issuer,
        audience: this.audience,
        requiredClaims: ['sub', 'exp'],
      });
      return { sub: String(payload.sub) };
    } catch (err) {
      if (err instanceof joseErrors.JOSEError || err instanceof TypeError) throw new HandoffError('unauthorized');
      throw err;
    }
  }
}

/** The bearer token from an `Authorization` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}
