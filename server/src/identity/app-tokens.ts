import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type FetchImplementation,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
  type JWTPayload,
} from 'jose';
import { ConfigError, envInt } from '../lib/env.js';
import { HandoffError } from '../errors.js';
import type { Principal } from './principal.js';

/*
 * App tokens (contract §7): JWTs the app in front of Handoff issues to its own users, verified with
 * the app's JWKS, one public key, or one HS256 secret. Every bad token is `unauthorized`, whatever
 * went wrong (malformed, forged, expired, JWKS down); nothing here throws anything else.
 */

/** Largest token looked at, in characters; a longer one is refused before any parsing. */
export const APP_TOKEN_MAX_CHARS = 8192;
/** Clock skew allowed on `exp` and `nbf`, seconds (contract §7: 30 s at most). */
export const APP_TOKEN_CLOCK_TOLERANCE_SECONDS = 30;
/** Algorithms accepted with public keys (JWKS or PEM). HS256 is never among them. */
export const APP_TOKEN_KEY_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

const SUB_MAX = 255;
const NAME_MAX = 200;
const PICTURE_MAX = 2048;
/** Largest JWKS document read; a bigger answer counts as a failed fetch. */
const JWKS_MAX_BYTES = 256 * 1024;
/** JWT claims a claim-name variable may not point at: they mean something else. */
const REGISTERED_CLAIMS = new Set(['iss', 'aud', 'exp', 'nbf', 'iat', 'jti']);

/** How app tokens are verified (from APP_* variables, see appTokenOptionsFromEnv). */
export interface AppTokenOptions {
  /** The app's JWKS (APP_JWKS_URL). Exactly one of jwksUrl, publicKeyPem, secret. */
  jwksUrl?: string;
  /** One public key, PEM (APP_JWT_PUBLIC_KEY): RSA (RS256, PS256), EC P-256 (ES256) or Ed25519 (EdDSA). */
  publicKeyPem?: string;
  /** HS256 shared secret, at least 32 bytes (APP_JWT_SECRET). */
  secret?: string;
  /** Required `iss`, compared exactly (APP_JWT_ISSUER). */
  issuer: string;
  /** Required `aud` (APP_JWT_AUDIENCE). */
  audience: string;
  /** Claim names of the user id, display name and avatar URL (APP_JWT_SUB_CLAIM / _NAME_CLAIM / _PICTURE_CLAIM; default sub, name, picture). */
  claims: { sub: string; name: string; picture: string };
  /** After a JWKS fetch, an unknown `kid` triggers no refetch for this long; also the pause after a failed fetch (APP_JWKS_COOLDOWN_MS, default 30000). */
  jwksCooldownMs?: number;
  /** Timeout of one JWKS fetch (APP_JWKS_TIMEOUT_MS, default 5000). */
  jwksTimeoutMs?: number;
  /** Keys are refetched when the JWKS is older than this (APP_JWKS_CACHE_MAX_AGE_MS, default 600000). */
  jwksCacheMaxAgeMs?: number;
  /** Called when a JWKS fetch fails (down, slow, not 200, not a JWKS); for a log line. Default: nothing. */
  onJwksFailure?: (err: Error) => void;
}

/** Default JWKS cooldown, ms. */
export const APP_JWKS_COOLDOWN_MS_DEFAULT = 30_000;
/** Default JWKS fetch timeout, ms. */
export const APP_JWKS_TIMEOUT_MS_DEFAULT = 5_000;
/** Default JWKS cache lifetime, ms. */
export const APP_JWKS_CACHE_MAX_AGE_MS_DEFAULT = 600_000;

type Env = Record<string, string | undefined>;

const KEY_VARIABLES = ['APP_JWKS_URL', 'APP_JWT_PUBLIC_KEY', 'APP_JWT_SECRET'] as const;

/**
 * App-token settings from APP_* variables; null when none of APP_JWKS_URL, APP_JWT_PUBLIC_KEY,
 * APP_JWT_SECRET is set. Throws ConfigError naming the variable for every bad value.
 */
export function appTokenOptionsFromEnv(env: Env): AppTokenOptions | null {
  const set = KEY_VARIABLES.filter((name) => (env[name] ?? '').trim() !== '');
  if (set.length === 0) return null;
  if (set.length > 1) {
    throw new ConfigError(set[1], `cannot be set together with ${set[0]}; set exactly one of ${KEY_VARIABLES.join(', ')}`);
  }
  const source = set[0];
  const production = (env.NODE_ENV ?? 'development') === 'production';

  const opts: AppTokenOptions = {
    issuer: required(env, 'APP_JWT_ISSUER', source),
    audience: required(env, 'APP_JWT_AUDIENCE', source),
    claims: {
      sub: claimName(env, 'APP_JWT_SUB_CLAIM', 'sub'),
      name: claimName(env, 'APP_JWT_NAME_CLAIM', 'name'),
      picture: claimName(env, 'APP_JWT_PICTURE_CLAIM', 'picture'),
    },
    jwksCooldownMs: envInt(env, 'APP_JWKS_COOLDOWN_MS', APP_JWKS_COOLDOWN_MS_DEFAULT, 1_000, 3_600_000),
    jwksTimeoutMs: envInt(env, 'APP_JWKS_TIMEOUT_MS', APP_JWKS_TIMEOUT_MS_DEFAULT, 100, 60_000),
    jwksCacheMaxAgeMs: envInt(env, 'APP_JWKS_CACHE_MAX_AGE_MS', APP_JWKS_CACHE_MAX_AGE_MS_DEFAULT, 1_000, 86_400_000),
  };

  if (source === 'APP_JWKS_URL') {
    opts.jwksUrl = jwksUrl(env.APP_JWKS_URL!.trim(), production);
  } else if (source === 'APP_JWT_PUBLIC_KEY') {
    const pem = pemFromEnv(env.APP_JWT_PUBLIC_KEY!);
    try {
      publicKeyAlgorithms(pem);
    } catch (err) {
      throw new ConfigError('APP_JWT_PUBLIC_KEY', (err as Error).message);
    }
    opts.publicKeyPem = pem;
  } else {
    const secret = env.APP_JWT_SECRET!;
    if (Buffer.byteLength(secret, 'utf8') < 32) throw new ConfigError('APP_JWT_SECRET', 'must be at least 32 bytes long');
    opts.secret = secret;
  }
  return opts;
}

function required(env: Env, name: string, because: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(name, `is required when ${because} is set`);
  if (value.length > 1024) throw new ConfigError(name, 'is longer than 1024 characters');
  return value;
}

function claimName(env: Env, name: string, def: string): string {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return def;
  if (raw.length > 256 || /[\s\u0000-\u001f\u007f]/.test(raw)) {
    throw new ConfigError(name, 'must be a claim name: up to 256 characters, no spaces or control characters');
  }
  if (REGISTERED_CLAIMS.has(raw)) throw new ConfigError(name, `cannot be the registered claim "${raw}"`);
  return raw;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** https anywhere; http only to a loopback host, or to any host outside production. */
function jwksUrl(raw: string, production: boolean): string {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError('APP_JWKS_URL', 'is not a valid URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError('APP_JWKS_URL', `must use https: (or http: to a loopback host), got ${parsed.protocol}`);
  }
  if (parsed.protocol === 'http:' && production && !LOOPBACK.test(parsed.hostname)) {
    throw new ConfigError('APP_JWKS_URL', 'must use https: with NODE_ENV=production (http: only to localhost, 127.0.0.1 or [::1])');
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new ConfigError('APP_JWKS_URL', 'must not carry credentials (user:password@)');
  }
  if (parsed.hash !== '') throw new ConfigError('APP_JWKS_URL', 'must not have a #fragment');
  return parsed.href;
}

/** An env value as PEM: literal "\n" sequences (one-line env files) become newlines. */
function pemFromEnv(raw: string): string {
  const text = raw.includes('\n') ? raw : raw.replace(/\\n/g, '\n');
  return text.trim();
}

/** The algorithms a public-key PEM may verify; throws (message without the key) when unusable. */
function publicKeyAlgorithms(pem: string): { spki: string; algorithms: KeyAlgorithm[] } {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new Error('is a private key; give the public key (openssl pkey -in key.pem -pubout)');
  }
  if (!/-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE)-----/.test(pem)) {
    throw new Error('is not a PEM public key (-----BEGIN PUBLIC KEY-----)');
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new Error('is not a readable PEM public key');
  }
  const spki = key.export({ type: 'spki', format: 'pem' }).toString();
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw new Error('RSA keys must be at least 2048 bits');
    return { spki, algorithms: ['RS256', 'PS256'] };
  }
  if (type === 'ec' && details.namedCurve === 'prime256v1') return { spki, algorithms: ['ES256'] };
  if (type === 'ed25519') return { spki, algorithms: ['EdDSA'] };
  throw new Error(`unsupported key type ${type}${details.namedCurve ? ` ${details.namedCurve}` : ''}; use RSA, EC P-256 or Ed25519`);
}

type KeyAlgorithm = (typeof APP_TOKEN_KEY_ALGORITHMS)[number];
type VerifyKey = CryptoKey | Uint8Array;
type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<VerifyKey>;

/** Verifies app tokens; one per process, built from AppTokenOptions. */
export class AppTokenVerifier {
  private readonly algorithms: string[];
  private readonly resolveKey: KeyResolver;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly claims: AppTokenOptions['claims'];

  constructor(opts: AppTokenOptions) {
    const sources = [opts.jwksUrl, opts.publicKeyPem, opts.secret].filter((v) => v !== undefined);
    if (sources.length !== 1) throw new TypeError('AppTokenVerifier needs exactly one of jwksUrl, publicKeyPem, secret');
    if (!opts.issuer || !opts.audience) throw new TypeError('AppTokenVerifier needs an issuer and an audience');
    this.issuer = opts.issuer;
    this.audience = opts.audience;
    this.claims = opts.claims;

    if (opts.secret !== undefined) {
      const key = new TextEncoder().encode(opts.secret);
      if (key.byteLength < 32) throw new TypeError('the app token secret must be at least 32 bytes');
      this.algorithms = ['HS256'];
      this.resolveKey = async () => key;
    } else if (opts.publicKeyPem !== undefined) {
      const { spki, algorithms } = publicKeyAlgorithms(opts.publicKeyPem);
      this.algorithms = algorithms;
      const keys = new Map(algorithms.map((alg) => [alg as string, importSPKI(spki, alg)]));
      // A failed import surfaces on verify (as unauthorized); do not leave it unhandled meanwhile.
      for (const key of keys.values()) key.catch(() => undefined);
      this.resolveKey = async (header) => {
        const key = keys.get(header.alg ?? '');
        if (!key) throw new joseErrors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
        return key;
      };
    } else {
      this.algorithms = [...APP_TOKEN_KEY_ALGORITHMS];
      const jwks = new JwksKeys(new URL(opts.jwksUrl!), opts);
      this.resolveKey = (header, token) => jwks.getKey(header, token);
    }
  }

  /** The app user a token names; any bad token → HandoffError('unauthorized'), never anything else. */
  async verify(token: unknown): Promise<Principal> {
    if (typeof token !== 'string' || token.length === 0 || token.length > APP_TOKEN_MAX_CHARS) {
      throw new HandoffError('unauthorized');
    }
    let payload: JWTPayload;
    try {
      // Cheap checks first, so a token of another issuer or algorithm never reaches the key lookup
      // (and so never triggers a JWKS fetch by its kid).
      const header = decodeProtectedHeader(token);
      if (typeof header.alg !== 'string' || !this.algorithms.includes(header.alg)) throw new HandoffError('unauthorized');
      if (decodeJwt(token).iss !== this.issuer) throw new HandoffError('unauthorized');
      ({ payload } = await jwtVerify(token, this.resolveKey, this.verifyOptions()));
    } catch {
      // Whatever failed (malformed, forged, expired, wrong iss/aud, key not found, JWKS down), the
      // answer is the same, and carries nothing of the token.
      throw new HandoffError('unauthorized');
    }
    return this.principal(payload);
  }

  private verifyOptions() {
    return {
      algorithms: this.algorithms,
      issuer: this.issuer,
      audience: this.audience,
      clockTolerance: APP_TOKEN_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp', 'iss', 'aud'],
    };
  }

  private principal(payload: JWTPayload): Principal {
    const claim = (name: string): unknown => (Object.hasOwn(payload, name) ? payload[name] : undefined);
    const sub = claim(this.claims.sub);
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > SUB_MAX || /[\u0000-\u001f\u007f]/.test(sub)) {
      throw new HandoffError('unauthorized');
    }
    return {
      kind: 'app',
      id: sub,
      displayName: displayName(claim(this.claims.name)) ?? sub,
      avatarUrl: avatarUrl(claim(this.claims.picture)),
    };
  }
}

/** A display name: a string with its control characters removed, trimmed, at most NAME_MAX code points. */
function displayName(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  if (clean === '') return null;
  const points = Array.from(clean);
  return points.length > NAME_MAX ? points.slice(0, NAME_MAX).join('').trimEnd() : clean;
}

/** An avatar URL: http(s), no credentials, at most PICTURE_MAX characters; anything else is dropped. */
function avatarUrl(value: unknown): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > PICTURE_MAX) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (url.username !== '' || url.password !== '') return null;
  return url.href;
}

/**
 * The app's JWKS through jose's createRemoteJWKSet (cache, refetch on an unknown kid at most once
 * per cooldown, one fetch in flight), plus what it does not do by itself:
 * - a failed fetch (down, slow, not 200, garbage) leaves the last good keys in use, even past
 *   cacheMaxAge, and the endpoint is not asked again for a cooldown (jose's cooldown only starts
 *   after a successful fetch, so a flood of unknown kids would otherwise retry a dead endpoint at
 *   the rate of the flood);
 * - the answer is read up to JWKS_MAX_BYTES.
 */
class JwksKeys {
  private readonly remote: ReturnType<typeof createRemoteJWKSet>;
  private readonly cooldownMs: number;
  private readonly onFailure: (err: Error) => void;
  private failedAt = Number.NEGATIVE_INFINITY;
  private lastGood: ReturnType<typeof createLocalJWKSet> | null = null;

  constructor(url: URL, opts: AppTokenOptions) {
    this.cooldownMs = opts.jwksCooldownMs ?? APP_JWKS_COOLDOWN_MS_DEFAULT;
    this.onFailure = opts.onJwksFailure ?? (() => undefined);
    this.remote = createRemoteJWKSet(url, {
      cooldownDuration: this.cooldownMs,
      timeoutDuration: opts.jwksTimeoutMs ?? APP_JWKS_TIMEOUT_MS_DEFAULT,
      cacheMaxAge: opts.jwksCacheMaxAgeMs ?? APP_JWKS_CACHE_MAX_AGE_MS_DEFAULT,
      [customFetch]: boundedFetch,
    });
  }

  async getKey(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    if (Date.now() < this.failedAt + this.cooldownMs) return this.fromLastGood(header, token);
    try {
      return await this.remote(header, token);
    } catch (err) {
      if (isKeySelectionError(err)) throw err;
      // The fetch failed: keep serving what we had, and leave the endpoint alone for a while.
      if (Date.now() >= this.failedAt + this.cooldownMs) {
        this.failedAt = Date.now();
        const jwks = this.remote.jwks();
        if (jwks) this.lastGood = createLocalJWKSet(jwks);
        this.onFailure(err instanceof Error ? err : new Error(String(err)));
      }
      return this.fromLastGood(header, token);
    }
  }

  private fromLastGood(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    if (!this.lastGood) throw new joseErrors.JWKSNoMatchingKey();
    return this.lastGood(header, token);
  }
}

/** Errors that mean "the keys we have do not fit this token", as opposed to "we could not get keys". */
function isKeySelectionError(err: unknown): boolean {
  return (
    err instanceof joseErrors.JWKSNoMatchingKey ||
    err instanceof joseErrors.JWKSMultipleMatchingKeys ||
    err instanceof joseErrors.JOSENotSupported ||
    err instanceof joseErrors.JOSEAlgNotAllowed
  );
}

/** fetch, with the body read up to JWKS_MAX_BYTES (a larger answer fails like a garbage one). */
const boundedFetch: FetchImplementation = async (url, init) => {
  const response = await fetch(url, init);
  if (response.status !== 200 || !response.body) return response;
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > JWKS_MAX_BYTES) {
    await response.body.cancel();
    throw new Error(`JWKS answer larger than ${JWKS_MAX_BYTES} bytes`);
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > JWKS_MAX_BYTES) {
      await reader.cancel();
      throw new Error(`JWKS answer larger than ${JWKS_MAX_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return new Response(Buffer.concat(chunks), { status: 200 });
};
