import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import {
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  importSPKI,
  type CryptoKey,
  type JWK,
} from 'jose';
import { ConfigError, envInt } from '../lib/env.js';
import type { Principal } from './principal.js';

/*
 * Assertions (contract §7): short-lived JWTs Handoff signs for a flow finished by an app user; the
 * browser hands one to the app's backend, which verifies it against GET /.well-known/jwks.json.
 * Signed with an asymmetric key (ES256 or EdDSA) that every node shares; previous public keys stay
 * published so assertions signed just before a rotation still verify.
 */

/** Default assertion lifetime, seconds (ASSERTION_TTL_SECONDS). */
export const ASSERTION_TTL_SECONDS_DEFAULT = 120;
/** Most previous public keys ASSERTION_PREVIOUS_KEYS may hold. */
export const ASSERTION_PREVIOUS_KEYS_MAX = 10;

/** How assertions are signed and published. */
export interface AssertionOptions {
  /** `iss` of every assertion (ASSERTION_ISSUER, default PUBLIC_URL, else "handoff"). */
  issuer: string;
  /** `aud` of every assertion: the app's backend (ASSERTION_AUDIENCE; required with ACCOUNTS=app|both). */
  audience: string;
  /** Lifetime, seconds (ASSERTION_TTL_SECONDS, default 120, 10–3600). */
  ttlSeconds: number;
  /** Signing key, PKCS8 PEM, EC P-256 (ES256) or Ed25519 (EdDSA) (ASSERTION_SIGNING_KEY; required with NODE_ENV=production; unset: a development key). */
  signingKeyPem?: string;
  /** Public keys (SPKI PEM) still published after a rotation (ASSERTION_PREVIOUS_KEYS, concatenated PEM blocks; default none). */
  previousPublicKeysPem?: string[];
}

type Env = Record<string, string | undefined>;
type SigningAlg = 'ES256' | 'EdDSA';

const OTHER_VARIABLES = ['ASSERTION_ISSUER', 'ASSERTION_TTL_SECONDS', 'ASSERTION_SIGNING_KEY', 'ASSERTION_PREVIOUS_KEYS'] as const;

/**
 * Assertion settings from ASSERTION_* variables; null when ASSERTION_AUDIENCE and every other
 * ASSERTION_* variable are unset (whether that is allowed depends on ACCOUNTS: the caller checks).
 * Throws ConfigError naming the variable for every bad value.
 */
export function assertionOptionsFromEnv(env: Env, defaults: { issuer: string }): AssertionOptions | null {
  const audience = env.ASSERTION_AUDIENCE?.trim() ?? '';
  if (audience === '') {
    const other = OTHER_VARIABLES.find((name) => (env[name] ?? '').trim() !== '');
    if (other) throw new ConfigError('ASSERTION_AUDIENCE', `is required when ${other} is set`);
    return null;
  }
  if (audience.length > 1024) throw new ConfigError('ASSERTION_AUDIENCE', 'is longer than 1024 characters');
  const issuer = env.ASSERTION_ISSUER?.trim() || defaults.issuer;
  if (issuer.length > 1024) throw new ConfigError('ASSERTION_ISSUER', 'is longer than 1024 characters');

  const opts: AssertionOptions = {
    issuer,
    audience,
    ttlSeconds: envInt(env, 'ASSERTION_TTL_SECONDS', ASSERTION_TTL_SECONDS_DEFAULT, 10, 3600),
  };

  const signing = env.ASSERTION_SIGNING_KEY?.trim() ?? '';
  if (signing !== '') {
    try {
      opts.signingKeyPem = readSigningKey(pemFromEnv(signing)).pkcs8;
    } catch (err) {
      throw new ConfigError('ASSERTION_SIGNING_KEY', (err as Error).message);
    }
  } else if ((env.NODE_ENV ?? 'development') === 'production') {
    throw new ConfigError('ASSERTION_SIGNING_KEY', 'is required when NODE_ENV=production (every node must sign with the same key)');
  }

  const previous = env.ASSERTION_PREVIOUS_KEYS?.trim() ?? '';
  if (previous !== '') {
    try {
      opts.previousPublicKeysPem = splitPublicKeys(pemFromEnv(previous));
    } catch (err) {
      throw new ConfigError('ASSERTION_PREVIOUS_KEYS', (err as Error).message);
    }
  }
  return opts;
}

/** An env value as PEM: literal "\n" sequences (one-line env files) become newlines. */
function pemFromEnv(raw: string): string {
  const text = raw.includes('\n') ? raw : raw.replace(/\\n/g, '\n');
  return text.trim();
}

/** The signing key's algorithm, and the key as PKCS8 PEM; throws (message without the key) when unusable. */
function readSigningKey(pem: string): { alg: SigningAlg; key: KeyObject; pkcs8: string } {
  if (!/-----BEGIN (PRIVATE KEY|EC PRIVATE KEY)-----/.test(pem)) {
    throw new Error('is not a PEM private key (-----BEGIN PRIVATE KEY-----); generate one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error('is not a readable PEM private key (encrypted keys are not supported)');
  }
  return { alg: signingAlg(key), key, pkcs8: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

function signingAlg(key: KeyObject): SigningAlg {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  throw new Error(`unsupported key type ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''}; use EC P-256 (ES256) or Ed25519 (EdDSA)`);
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

/** Concatenated PEM public keys → one PEM per key; anything else in the text is an error. */
function splitPublicKeys(text: string): string[] {
  const blocks: string[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] !== 'PUBLIC KEY') {
      throw new Error(`holds a ${m[1]} block; give public keys only (openssl pkey -in old.pem -pubout)`);
    }
    blocks.push(m[0]);
  }
  if (text.replace(PEM_BLOCK, '').replace(/[\s,]/g, '') !== '') {
    throw new Error('must be PEM public keys (-----BEGIN PUBLIC KEY----- blocks), one after another');
  }
  if (blocks.length > ASSERTION_PREVIOUS_KEYS_MAX) throw new Error(`holds more than ${ASSERTION_PREVIOUS_KEYS_MAX} keys`);
  return blocks.map((block, i) => {
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch {
      throw new Error(`key ${i + 1} is not a readable PEM public key`);
    }
    try {
      signingAlg(key);
    } catch (err) {
      throw new Error(`key ${i + 1}: ${(err as Error).message}`);
    }
    return key.export({ type: 'spki', format: 'pem' }).toString();
  });
}

/** A public key as published in the JWKS. */
interface PublishedKey extends JWK {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
}

async function published(publicJwk: JWK, alg: SigningAlg): Promise<PublishedKey> {
  const { kty, crv, x, y } = publicJwk;
  const jwk: JWK = y === undefined ? { kty, crv, x } : { kty, crv, x, y };
  return { ...jwk, kid: await calculateJwkThumbprint(jwk, 'sha256'), alg, use: 'sig' };
}

/** Signs assertions with the current key and publishes it with the previous ones. */
export class AssertionSigner {
  private constructor(
    private readonly opts: AssertionOptions,
    private readonly key: CryptoKey,
    private readonly current: PublishedKey,
    private readonly previous: PublishedKey[],
  ) {}

  /** A signer for `opts`; rejects (TypeError, without the key) when a key is unusable. */
  static async create(opts: AssertionOptions & { signingKeyPem: string }): Promise<AssertionSigner> {
    if (!opts.issuer || !opts.audience) throw new TypeError('AssertionSigner needs an issuer and an audience');
    if (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds < 1) throw new TypeError('AssertionSigner needs a positive whole ttlSeconds');
    let signing: ReturnType<typeof readSigningKey>;
    try {
      signing = readSigningKey(opts.signingKeyPem.trim());
    } catch (err) {
      throw new TypeError(`assertion signing key ${(err as Error).message}`);
    }
    const key = await importPKCS8(signing.pkcs8, signing.alg);
    const current = await published(createPublicKey(signing.key).export({ format: 'jwk' }) as JWK, signing.alg);

    const previous: PublishedKey[] = [];
    for (const pem of opts.previousPublicKeysPem ?? []) {
      let alg: SigningAlg;
      try {
        alg = signingAlg(createPublicKey(pem));
      } catch (err) {
        throw new TypeError(`previous assertion key ${(err as Error).message}`);
      }
      const jwk = await published(await exportJWK(await importSPKI(pem, alg, { extractable: true })), alg);
      if (jwk.kid !== current.kid && !previous.some((p) => p.kid === jwk.kid)) previous.push(jwk);
    }
    return new AssertionSigner(opts, key, current, previous);
  }

  /** A development key (PKCS8 PEM, ES256), for when ASSERTION_SIGNING_KEY is unset; store it where every node reads it. */
  static async generateDevKeyPem(): Promise<string> {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    return exportPKCS8(privateKey);
  }

  /** `kid` of the current signing key (its RFC 7638 JWK thumbprint). */
  get kid(): string {
    return this.current.kid;
  }

  /**
   * A signed assertion for `principal`: iss, aud, sub, jti (192 random bits), iat, exp, amr, flow,
   * name, and picture when there is one; header alg and kid.
   */
  async sign(principal: Principal, claims: { amr: ['qr'] | ['pwd'] | ['approval']; flow: string }): Promise<{ token: string; expiresAt: string; jti: string }> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + this.opts.ttlSeconds;
    const jti = randomBytes(24).toString('base64url');
    const body: Record<string, unknown> = { amr: [...claims.amr], flow: claims.flow, name: principal.displayName };
    if (principal.avatarUrl !== null) body.picture = principal.avatarUrl;
    const token = await new SignJWT(body)
      .setProtectedHeader({ alg: this.current.alg, kid: this.current.kid, typ: 'JWT' })
      .setIssuer(this.opts.issuer)
      .setAudience(this.opts.audience)
      .setSubject(principal.id)
      .setJti(jti)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(this.key);
    return { token, expiresAt: new Date(exp * 1000).toISOString(), jti };
  }

  /** The JWKS document: the current public key first, then the previous ones (kid, alg, use "sig"). */
  jwks(): { keys: object[] } {
    return { keys: [this.current, ...this.previous].map((k) => ({ ...k })) };
  }
}
