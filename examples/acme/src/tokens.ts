import { randomUUID } from 'node:crypto';
import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  jwtVerify,
  type JSONWebKeySet,
  type JWK,
} from 'jose';
import type { AcmeDb, AcmeUser } from './db.js';

/*
 * Acme's own access tokens: RS256 JWTs its phone app gets from POST /api/login, published keys at
 * /.well-known/jwks.json. Handoff (APP_JWKS_URL) verifies the very same tokens.
 *
 * Rotation, as Acme runs it: `rotate()` adds a new key and signs with it at once while the old key
 * stays published (tokens already out keep working); `dropPrevious()` later removes the old keys
 * (once the longest token signed with them has expired), and they stop verifying everywhere once
 * each verifier's JWKS cache has expired (Handoff: APP_JWKS_CACHE_MAX_AGE_MS).
 */

/** What Acme's tokens say about who issued them and for whom. */
export interface TokenSettings {
  /** `iss` of every token (Handoff's APP_JWT_ISSUER). */
  issuer: string;
  /** `aud` of every token (Handoff's APP_JWT_AUDIENCE). */
  audience: string;
  /** Lifetime, seconds. */
  ttlSeconds: number;
}

/** Acme's signing keys (kept in its database) and the tokens they sign. */
export class AcmeTokens {
  constructor(
    private readonly db: AcmeDb,
    readonly settings: TokenSettings,
  ) {}

  /** Make sure there is a current key (the first start generates one). */
  async init(): Promise<void> {
    if (!this.db.keys().some((k) => k.state === 'current')) await this.rotate();
  }

  /** Add a new RS256 key and sign with it from now on; the old one stays published. Returns the new kid. */
  async rotate(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    const publicJwk: JWK = { ...jwk, kid, alg: 'RS256', use: 'sig' };
    this.db.addCurrentKey({ kid, privatePem: await exportPKCS8(privateKey), publicJwk: JSON.stringify(publicJwk) });
    return kid;
  }

  /** Stop publishing the keys `rotate()` replaced; returns their kids. */
  dropPrevious(): string[] {
    return this.db.dropPreviousKeys();
  }

  /** The published keys (current and previous), for /.well-known/jwks.json. */
  jwks(): JSONWebKeySet {
    return { keys: this.db.keys().map((k) => JSON.parse(k.publicJwk) as JWK) };
  }

  /** Sign a token for `user` with the current key. */
  async sign(user: AcmeUser): Promise<{ token: string; expiresAt: string; kid: string }> {
    const key = this.db.keys().find((k) => k.state === 'current');
    if (!key) throw new Error('no current signing key: call init()');
    const exp = Math.floor(Date.now() / 1000) + this.settings.ttlSeconds;
    const token = await new SignJWT({ name: user.displayName, ...(user.avatarUrl ? { picture: user.avatarUrl } : {}) })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setSubject(user.id)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(await importPKCS8(key.privatePem, 'RS256'));
    return { token, expiresAt: new Date(exp * 1000).toISOString(), kid: key.kid };
  }

  /** The user id (`sub`) of a valid Acme token signed by a key still published, else null. */
  async verify(token: string): Promise<string | null> {
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(this.jwks()), {
        algorithms: ['RS256'],
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        requiredClaims: ['sub', 'exp'],
      });
      return payload.sub ?? null;
    } catch {
      return null;
    }
  }
}
