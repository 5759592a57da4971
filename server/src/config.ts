import { randomBytes } from 'node:crypto';
import { WS_PING_INTERVAL_MS } from '@handoff/protocol';

/** Validated server configuration, read once from the environment at start. */
export interface Config {
  /** TCP port (PORT, default 3000). */
  port: number;
  /** Bind address (HOST, default 0.0.0.0). */
  host: string;
  /** Redis URL (REDIS_URL); unset = embedded mode (one process, in-memory store and fan-out). */
  redisUrl: string | null;
  /** Key prefix in Redis (REDIS_PREFIX, default `handoff:`). */
  redisPrefix: string;
  /** HS256 secret for session JWTs (JWT_SECRET; required when NODE_ENV=production). */
  jwtSecret: string;
  /** True when JWT_SECRET was not given and a random per-process secret is used. */
  jwtSecretGenerated: boolean;
  /** JWT issuer and audience (JWT_ISSUER / JWT_AUDIENCE, default `handoff`). */
  jwtIssuer: string;
  jwtAudience: string;
  /** Session lifetime in seconds (SESSION_TTL_SECONDS, default 3600). */
  sessionTtlSeconds: number;
  /** Origins allowed on the socket endpoints besides the server's own (ALLOWED_ORIGINS, comma-separated; `*` = any). */
  allowedOrigins: string[];
  /** Public base URL used in QR payloads and image URLs (PUBLIC_URL; default derived from each request). */
  publicUrl: string | null;
  /** Lifetime of a QR flow in seconds (QR_TTL_SECONDS, default 120). */
  qrTtlSeconds: number;
  /** How long a finished flow stays readable, seconds (TOMBSTONE_SECONDS, default 60). */
  tombstoneSeconds: number;
  /** bcrypt cost (BCRYPT_COST, default 12, 4–15). */
  bcryptCost: number;
  /** pino level (LOG_LEVEL, default info). */
  logLevel: string;
  /** Largest HTTP body accepted, bytes (BODY_LIMIT_BYTES, default 16384). */
  bodyLimitBytes: number;
  /** Largest WebSocket frame, bytes (WS_MAX_FRAME_BYTES, default 16384). */
  wsMaxFrameBytes: number;
  /** Server ping interval on /v1/ws, ms (WS_PING_INTERVAL_MS, default 25000); two missed pings drop the peer. */
  wsPingIntervalMs: number;
  /** Expiry sweep interval, ms (EXPIRY_SWEEP_MS, default 250). */
  expirySweepMs: number;
  /** Seed a demo user in embedded mode (SEED_DEMO_USER, default true in embedded mode). */
  seedDemoUser: boolean;
  /** SIGTERM drain bound, seconds (SHUTDOWN_TIMEOUT_SECONDS, default 10). */
  shutdownTimeoutSeconds: number;
  /** Trust X-Forwarded-* from a proxy in front (TRUST_PROXY, default false). */
  trustProxy: boolean;
  nodeEnv: string;
}

/** Thrown when an environment variable has a bad value; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return def;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${env[name]}"`);
}

function url(env: Env, name: string, protocols: string[]): string | null {
  const raw = env[name]?.trim();
  if (!raw) return null;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return raw;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Read and validate the configuration; throws ConfigError naming the bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = env.NODE_ENV ?? 'development';
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  let jwtSecret = env.JWT_SECRET ?? '';
  let jwtSecretGenerated = false;
  if (!jwtSecret) {
    if (nodeEnv === 'production') throw new ConfigError('JWT_SECRET', 'is required when NODE_ENV=production');
    jwtSecret = randomBytes(32).toString('base64url');
    jwtSecretGenerated = true;
  } else if (Buffer.byteLength(jwtSecret) < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 bytes long');
  }
  const logLevel = (env.LOG_LEVEL ?? 'info').trim();
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const publicUrl = url(env, 'PUBLIC_URL', ['http:', 'https:']);
  const allowedOrigins = (env.ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of allowedOrigins) {
    if (origin === '*') continue;
    try {
      const u = new URL(origin);
      if (u.origin !== origin) throw new Error();
    } catch {
      throw new ConfigError('ALLOWED_ORIGINS', `"${origin}" is not an origin like https://app.example.com`);
    }
  }
  return {
    port: int(env, 'PORT', 3000, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    redisUrl,
    redisPrefix: env.REDIS_PREFIX?.trim() || 'handoff:',
    jwtSecret,
    jwtSecretGenerated,
    jwtIssuer: env.JWT_ISSUER?.trim() || 'handoff',
    jwtAudience: env.JWT_AUDIENCE?.trim() || 'handoff',
    sessionTtlSeconds: int(env, 'SESSION_TTL_SECONDS', 3600, 60, 30 * 86400),
    allowedOrigins,
    publicUrl: publicUrl ? publicUrl.replace(/\/+$/, '') : null,
    qrTtlSeconds: int(env, 'QR_TTL_SECONDS', 120, 1, 3600),
    tombstoneSeconds: int(env, 'TOMBSTONE_SECONDS', 60, 1, 86400),
    bcryptCost: int(env, 'BCRYPT_COST', 12, 4, 15),
    logLevel,
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 16 * 1024, 1024, 1024 * 1024),
    wsMaxFrameBytes: int(env, 'WS_MAX_FRAME_BYTES', 16 * 1024, 1024, 1024 * 1024),
    wsPingIntervalMs: int(env, 'WS_PING_INTERVAL_MS', WS_PING_INTERVAL_MS, 100, 600_000),
    expirySweepMs: int(env, 'EXPIRY_SWEEP_MS', 250, 10, 60_000),
    seedDemoUser: bool(env, 'SEED_DEMO_USER', redisUrl === null && nodeEnv !== 'production'),
    shutdownTimeoutSeconds: int(env, 'SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 600),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    nodeEnv,
  };
}
