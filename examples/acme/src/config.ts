/*
 * Acme's settings, from the environment. Acme is an example, but it refuses bad settings at start
 * the way Handoff does: the message names the variable.
 */

/** Everything Acme needs to run. */
export interface AcmeConfig {
  /** PORT (default 4000; 0 = any free port). */
  port: number;
  /** HOST (default 127.0.0.1). */
  host: string;
  /** ACME_PUBLIC_URL: Acme's own origin as browsers see it (default http://localhost:<port>); https makes the cookie Secure. */
  publicUrl: string | null;
  /** ACME_DB: the SQLite file (default `:memory:`, gone at exit). */
  dbPath: string;
  /** ACME_ISSUER: `iss` of Acme's tokens (Handoff's APP_JWT_ISSUER; default the public URL). */
  issuer: string | null;
  /** ACME_TOKEN_AUDIENCE: `aud` of Acme's tokens (Handoff's APP_JWT_AUDIENCE; default `acme-api`). */
  tokenAudience: string;
  /** ACME_TOKEN_TTL_SECONDS: lifetime of Acme's tokens (default 3600). */
  tokenTtlSeconds: number;
  /** HANDOFF_URL: Handoff as the browser reaches it (required). */
  handoffUrl: string;
  /** HANDOFF_INTERNAL_URL: Handoff as Acme's backend reaches it, for its JWKS and the server API (default HANDOFF_URL). */
  handoffInternalUrl: string;
  /** HANDOFF_ASSERTION_ISSUER: Handoff's ASSERTION_ISSUER (default HANDOFF_URL, as Handoff defaults it to its PUBLIC_URL). */
  assertionIssuer: string;
  /** ACME_ASSERTION_AUDIENCE: Handoff's ASSERTION_AUDIENCE, the `aud` Acme requires (default `acme-web`). */
  assertionAudience: string;
  /** ACME_CREDENTIALS_SECRET: Handoff's CREDENTIALS_SECRET; without it POST /handoff/credentials answers 404. */
  credentialsSecret: string | null;
  /** HANDOFF_API_KEY: one key of Handoff's API_KEYS (the key part); without it the server-API routes answer 404. */
  handoffApiKey: string | null;
  /** ACME_ADMIN_TOKEN: bearer token for /admin/keys/*; without it those routes answer 404. */
  adminToken: string | null;
  /** ACME_SEED_USERS: `login:password:Display Name,…` added at start when the login is new. */
  seedUsers: Array<{ login: string; password: string; displayName: string }>;
  /** ACME_SESSION_TTL_SECONDS: lifetime of Acme's session cookie (default 7 days). */
  sessionTtlSeconds: number;
}

/** A setting Acme refuses; the message starts with the variable. */
export class AcmeConfigError extends Error {
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'AcmeConfigError';
  }
}

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new AcmeConfigError(name, `must be a whole number from ${min} to ${max}, got "${raw}"`);
  return n;
}

function origin(env: NodeJS.ProcessEnv, name: string, required: boolean): string | null {
  const raw = env[name];
  if (!raw) {
    if (required) throw new AcmeConfigError(name, 'is required (e.g. http://localhost:3000)');
    return null;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AcmeConfigError(name, `"${raw}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AcmeConfigError(name, 'must be http(s)');
  if (url.username || url.password || url.search || url.hash) throw new AcmeConfigError(name, 'must be a plain origin (no user, query or fragment)');
  return url.href.replace(/\/+$/, '');
}

/** Read Acme's settings from `env`; throws AcmeConfigError naming the variable. */
export function loadAcmeConfig(env: NodeJS.ProcessEnv = process.env): AcmeConfig {
  const handoffUrl = origin(env, 'HANDOFF_URL', true)!;
  const secret = env.ACME_CREDENTIALS_SECRET || null;
  if (secret !== null && !secret.startsWith('whsec_') && Buffer.byteLength(secret) < 24) {
    throw new AcmeConfigError('ACME_CREDENTIALS_SECRET', 'must be whsec_<base64> or at least 24 bytes (the same value as Handoff\'s CREDENTIALS_SECRET)');
  }
  const apiKey = env.HANDOFF_API_KEY || null;
  if (apiKey !== null && apiKey.length < 32) throw new AcmeConfigError('HANDOFF_API_KEY', 'must be at least 32 characters (the key part of an API_KEYS entry)');
  const admin = env.ACME_ADMIN_TOKEN || null;
  if (admin !== null && admin.length < 16) throw new AcmeConfigError('ACME_ADMIN_TOKEN', 'must be at least 16 characters');
  const seedUsers = (env.ACME_SEED_USERS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [login, password, ...name] = entry.split(':');
      if (!login || !password) throw new AcmeConfigError('ACME_SEED_USERS', 'entries are login:password:Display Name');
      return { login, password, displayName: name.join(':') || login };
    });
  return {
    port: int(env, 'PORT', 4000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    publicUrl: origin(env, 'ACME_PUBLIC_URL', false),
    dbPath: env.ACME_DB || ':memory:',
    issuer: env.ACME_ISSUER || null,
    tokenAudience: env.ACME_TOKEN_AUDIENCE || 'acme-api',
    tokenTtlSeconds: int(env, 'ACME_TOKEN_TTL_SECONDS', 3600, 60, 86400 * 30),
    handoffUrl,
    handoffInternalUrl: origin(env, 'HANDOFF_INTERNAL_URL', false) ?? handoffUrl,
    assertionIssuer: env.HANDOFF_ASSERTION_ISSUER || handoffUrl,
    assertionAudience: env.ACME_ASSERTION_AUDIENCE || 'acme-web',
    credentialsSecret: secret,
    handoffApiKey: apiKey,
    adminToken: admin,
    seedUsers,
    sessionTtlSeconds: int(env, 'ACME_SESSION_TTL_SECONDS', 7 * 86400, 60, 365 * 86400),
  };
}
