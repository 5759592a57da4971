import { approvalConfig, type ApprovalConfig } from './approvals/approval-config.js';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { WS_PING_INTERVAL_MS } from '@handoff/protocol';
import { ConfigError, envBool, envInt, envUrl, type Env } from './lib/env.js';
import { appTokenOptionsFromEnv, type AppTokenOptions } from './identity/app-tokens.js';
import { assertionOptionsFromEnv, type AssertionOptions } from './identity/assertions.js';
import { credentialsOptionsFromEnv, type CredentialsOptions } from './identity/credentials-client.js';
import { signingSecret } from './webhooks/signature.js';
import { apiKeysFromEnv, type ApiKeys } from './server-api/api-keys.js';
import { describeRedis, redisConfigFromEnv, type RedisConfig } from './store/redis-config.js';
import { redisPrefixFromEnv } from './store/keys.js';
import { redisDurabilityFromEnv, type RedisDurability } from './store/redis-durability.js';

/** Validated server configuration, read once from the environment at start. */
export interface Config {
  /** TCP port (PORT, default 3000). */
  port: number;
  /** Bind address (HOST, default 0.0.0.0). */
  host: string;
  /**
   * Non-null = Redis mode: REDIS_URL as given, or a secret-free name of the Sentinel / Cluster
   * deployment (describeRedis); null = embedded mode (one process, in-memory store and fan-out).
   * Only a flag: connections come from `redis` through createRedisConnection.
   */
  redisUrl: string | null;
  /** The Redis deployment (REDIS_URL | REDIS_SENTINELS + REDIS_SENTINEL_MASTER | REDIS_CLUSTER_NODES, credentials, TLS); null = embedded mode. */
  redis: RedisConfig | null;
  /** Key prefix in Redis (REDIS_PREFIX, default `handoff:`). */
  redisPrefix: string;
  /** WAIT for replicas after durable flow transitions (REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT_MS; store/redis-durability.ts). */
  redisDurability: RedisDurability;
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
  /** QR flows one client IP may create per minute (QR_IP_PER_MINUTE, default 60; 0 = no limit). */
  qrIpPerMinute: number;
  /** Push-to-approve: the settings of approvals/approval-config.ts (APPROVAL_* and APPROVALS_PER_USER). */
  approvals: ApprovalConfig;
  /** How long a finished flow stays readable, seconds (TOMBSTONE_SECONDS, default 60). */
  tombstoneSeconds: number;
  /** bcrypt cost (BCRYPT_COST, default 12, 4–15). */
  bcryptCost: number;
  /** Threads hashing passwords (niced below the event loop; see users/bcrypt-pool.ts). */
  bcryptThreads: number;
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
  /** Seed a demo user (SEED_DEMO_USER, default true in embedded mode outside production, except with ACCOUNTS=app). */
  seedDemoUser: boolean;
  /** SIGTERM drain bound, seconds (SHUTDOWN_TIMEOUT_SECONDS, default 10). */
  shutdownTimeoutSeconds: number;
  /**
   * How committed states reach the other nodes in Redis mode (FANOUT, default sharded): `sharded`,
   * one sharded pub/sub channel per topic that only nodes with its subscribers listen to;
   * `broadcast`, every state to every node over the Socket.IO Redis adapter (rollback).
   */
  fanout?: 'sharded' | 'broadcast';
  /** Which parts run in this process (ROLE: api | worker | all, default all). */
  role: 'api' | 'worker' | 'all';
  /** A job whose worker died is taken over after this long, ms (QUEUE_LOCK_MS, default 30000). */
  queueLockMs: number;
  /** Lifetime of an async login flow, seconds (LOGIN_TTL_SECONDS, default 120). */
  loginTtlSeconds: number;
  /** Async logins one worker process verifies at once (LOGIN_CONCURRENCY, default 4). */
  loginConcurrency: number;
  /** Queue-position pushes: at most one sweep per interval per node (0: push every change). */
  loginPositionIntervalMs: number;
  /** Failed logins per account before a lockout (LOGIN_MAX_FAILURES, default 10 per 15 minutes). */
  loginMaxFailures: number;
  /** Lockout length and failure window, seconds (LOGIN_LOCKOUT_SECONDS, default 900). */
  loginLockoutSeconds: number;
  /** Login attempts per client IP per minute (LOGIN_IP_PER_MINUTE, default 60). */
  loginIpPerMinute: number;
  /** Lifetime of a verification code, seconds (CODE_TTL_SECONDS, default 600). */
  codeTtlSeconds: number;
  /** Wait before the same recipient may ask for a code again, seconds (CODE_RESEND_SECONDS, default 60). */
  codeResendSeconds: number;
  /** SMTP server for email codes (SMTP_URL, e.g. smtp://user:pass@host:587); unset = log sender in embedded mode. */
  smtpUrl: string | null;
  /** From address of code emails (MAIL_FROM, default `Handoff <no-reply@localhost>`). */
  mailFrom: string;
  /** HTTP endpoint that sends SMS: receives POST {to, text} JSON (SMS_WEBHOOK_URL). */
  smsWebhookUrl: string | null;
  /** Backend endpoints that receive webhooks (WEBHOOK_URLS, comma-separated). */
  webhookUrls: string[];
  /** Standard Webhooks signing secret (WEBHOOK_SECRET, `whsec_` + base64, or any string of 24+ bytes). */
  webhookSecret: string | null;
  /** Whose users sign in (ACCOUNTS: builtin | app | both, default builtin; contract §7). */
  accounts: 'builtin' | 'app' | 'both';
  /** How the app's own tokens are verified (APP_JWKS_URL | APP_JWT_PUBLIC_KEY | APP_JWT_SECRET, APP_JWT_ISSUER, …); null with none set. */
  appTokens: AppTokenOptions | null;
  /** The assertions a redeem hands app users (ASSERTION_AUDIENCE, ASSERTION_ISSUER, ASSERTION_SIGNING_KEY, …); null with none set. */
  assertions: AssertionOptions | null;
  /** CREDENTIALS_URL, CREDENTIALS_SECRET, CREDENTIALS_TIMEOUT_MS: passwords checked by the app; null: by Handoff's accounts. */
  credentials: CredentialsOptions | null;
  /** What a QR code encodes (QR_PAYLOAD_URL, a template with `{id}`); null: the demo phone page. */
  qrPayloadUrl: string | null;
  /** Serve the demo pages at / and /app (DEMO_PAGES, default true outside NODE_ENV=production, false in it). */
  demoPages: boolean;
  /** Trust X-Forwarded-* from a proxy in front (TRUST_PROXY, default false). */
  trustProxy: boolean;
  nodeEnv: string;
  /** The server API's keys (API_KEYS, `name:key,…`) and their limit (API_KEY_PER_MINUTE, default 600); null: the server API is off. */
  apiKeys: ApiKeys | null;
}

export { ConfigError, envBool, envInt, type Env } from './lib/env.js';

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], def: T): T {
  const raw = env[name]?.trim();
  if (!raw) return def;
  if (!(values as readonly string[]).includes(raw)) throw new ConfigError(name, `must be one of ${values.join(', ')}, got "${raw}"`);
  return raw as T;
}

function list(env: Env, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function webhookSecret(env: Env): string | null {
  const raw = env.WEBHOOK_SECRET?.trim();
  if (!raw) {
    if (list(env, 'WEBHOOK_URLS').length > 0) throw new ConfigError('WEBHOOK_SECRET', 'is required when WEBHOOK_URLS is set');
    return null;
  }
  return signingSecret(raw, 'WEBHOOK_SECRET');
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Read and validate the configuration; throws ConfigError naming the bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = env.NODE_ENV ?? 'development';
  const redis = redisConfigFromEnv(env);
  const redisUrl = redis ? describeRedis(redis) : null;
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
  const publicUrl = envUrl(env, 'PUBLIC_URL', ['http:', 'https:']);
  const allowedOrigins = list(env, 'ALLOWED_ORIGINS');
  for (const origin of allowedOrigins) {
    if (origin === '*') continue;
    try {
      const u = new URL(origin);
      if (u.origin !== origin) throw new Error();
    } catch {
      throw new ConfigError('ALLOWED_ORIGINS', `"${origin}" is not an origin like https://app.example.com`);
    }
  }
  const accounts = oneOf(env, 'ACCOUNTS', ['builtin', 'app', 'both'] as const, 'builtin');
  const credentials = credentialsOptionsFromEnv(env);
  const appTokens = appTokenOptionsFromEnv(env);
  const assertions = assertionOptionsFromEnv(env, { issuer: publicUrl ? publicUrl.replace(/\/+$/, '') : 'handoff' });
  if (accounts !== 'builtin') {
    // App users are identified by the app's tokens and leave with an assertion for the app's backend.
    if (!appTokens) throw new ConfigError('ACCOUNTS', `ACCOUNTS=${accounts} needs APP_JWKS_URL, APP_JWT_PUBLIC_KEY or APP_JWT_SECRET (with APP_JWT_ISSUER and APP_JWT_AUDIENCE)`);
    if (!assertions) throw new ConfigError('ASSERTION_AUDIENCE', `is required with ACCOUNTS=${accounts}: the app backend's audience for the assertions`);
  }
  if (credentials && accounts === 'builtin') {
    throw new ConfigError('CREDENTIALS_URL', 'passwords checked by the app make app users: set ACCOUNTS=app (or both)');
  }
  return {
    port: envInt(env, 'PORT', 3000, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    redisUrl,
    redis,
    redisPrefix: redisPrefixFromEnv(env),
    redisDurability: redisDurabilityFromEnv(env, redis),
    jwtSecret,
    jwtSecretGenerated,
    jwtIssuer: env.JWT_ISSUER?.trim() || 'handoff',
    jwtAudience: env.JWT_AUDIENCE?.trim() || 'handoff',
    sessionTtlSeconds: envInt(env, 'SESSION_TTL_SECONDS', 3600, 60, 30 * 86400),
    allowedOrigins,
    publicUrl: publicUrl ? publicUrl.replace(/\/+$/, '') : null,
    qrTtlSeconds: envInt(env, 'QR_TTL_SECONDS', 120, 1, 3600),
    qrIpPerMinute: envInt(env, 'QR_IP_PER_MINUTE', 60, 0, 1_000_000),
    approvals: approvalConfig(env),
    tombstoneSeconds: envInt(env, 'TOMBSTONE_SECONDS', 60, 1, 86400),
    bcryptCost: envInt(env, 'BCRYPT_COST', 12, 4, 15),
    bcryptThreads: envInt(env, 'BCRYPT_THREADS', availableParallelism(), 1, 64),
    logLevel,
    bodyLimitBytes: envInt(env, 'BODY_LIMIT_BYTES', 16 * 1024, 1024, 1024 * 1024),
    wsMaxFrameBytes: envInt(env, 'WS_MAX_FRAME_BYTES', 16 * 1024, 1024, 1024 * 1024),
    wsPingIntervalMs: envInt(env, 'WS_PING_INTERVAL_MS', WS_PING_INTERVAL_MS, 100, 600_000),
    expirySweepMs: envInt(env, 'EXPIRY_SWEEP_MS', 250, 10, 60_000),
    // The demo account is a built-in one: none with ACCOUNTS=app (Handoff stores no user then).
    seedDemoUser: envBool(env, 'SEED_DEMO_USER', redisUrl === null && nodeEnv !== 'production' && accounts !== 'app'),
    shutdownTimeoutSeconds: envInt(env, 'SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 600),
    trustProxy: envBool(env, 'TRUST_PROXY', false),
    demoPages: envBool(env, 'DEMO_PAGES', nodeEnv !== 'production'),
    role: oneOf(env, 'ROLE', ['api', 'worker', 'all'] as const, 'all'),
    fanout: oneOf(env, 'FANOUT', ['sharded', 'broadcast'] as const, 'sharded'),
    accounts,
    qrPayloadUrl: qrPayloadTemplate(env),
    credentials,
    appTokens,
    assertions,
    queueLockMs: envInt(env, 'QUEUE_LOCK_MS', 30_000, 500, 600_000),
    loginTtlSeconds: envInt(env, 'LOGIN_TTL_SECONDS', 120, 1, 3600),
    loginConcurrency: envInt(env, 'LOGIN_CONCURRENCY', 4, 1, 64),
    loginPositionIntervalMs: envInt(env, 'LOGIN_POSITION_INTERVAL_MS', 250, 0, 60_000),
    loginMaxFailures: envInt(env, 'LOGIN_MAX_FAILURES', 10, 1, 10_000),
    loginLockoutSeconds: envInt(env, 'LOGIN_LOCKOUT_SECONDS', 900, 1, 86_400),
    loginIpPerMinute: envInt(env, 'LOGIN_IP_PER_MINUTE', 60, 1, 1_000_000),
    codeTtlSeconds: envInt(env, 'CODE_TTL_SECONDS', 600, 10, 86400),
    codeResendSeconds: envInt(env, 'CODE_RESEND_SECONDS', 60, 1, 3600),
    smtpUrl: envUrl(env, 'SMTP_URL', ['smtp:', 'smtps:']),
    mailFrom: env.MAIL_FROM?.trim() || 'Handoff <no-reply@localhost>',
    smsWebhookUrl: envUrl(env, 'SMS_WEBHOOK_URL', ['http:', 'https:']),
    webhookUrls: list(env, 'WEBHOOK_URLS').map((u) => {
      try {
        const parsed = new URL(u);
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
      } catch {
        throw new ConfigError('WEBHOOK_URLS', `"${u}" is not an http(s) URL`);
      }
      return u;
    }),
    webhookSecret: webhookSecret(env),
    nodeEnv,
    apiKeys: apiKeysFromEnv(env),
  };
}

/** QR_PAYLOAD_URL: an absolute URL (https://…, or an app scheme such as acme://) with `{id}` where the flow id goes. */
function qrPayloadTemplate(env: Env): string | null {
  const raw = env.QR_PAYLOAD_URL?.trim();
  if (!raw) return null;
  if (!raw.includes('{id}')) throw new ConfigError('QR_PAYLOAD_URL', `must contain {id} where the flow id goes, got "${raw}"`);
  let parsed: URL;
  try {
    parsed = new URL(raw.replaceAll('{id}', 'x'));
  } catch {
    throw new ConfigError('QR_PAYLOAD_URL', `must be an absolute URL template such as https://app.example.com/qr/{id} or acme://login/{id}, got "${raw}"`);
  }
  if (['javascript:', 'data:', 'file:', 'vbscript:'].includes(parsed.protocol)) {
    throw new ConfigError('QR_PAYLOAD_URL', `the ${parsed.protocol} scheme is not allowed`);
  }
  return raw;
}
