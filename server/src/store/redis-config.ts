/**
 * Which Redis deployment Handoff talks to (contract §8), read from the environment:
 *  - one Redis: REDIS_URL (`redis://` or `rediss://`);
 *  - Sentinel: REDIS_SENTINELS (`host:port,…`) and REDIS_SENTINEL_MASTER;
 *  - Cluster: REDIS_CLUSTER_NODES (`host:port,…`, Redis Cluster 7+).
 * Credentials (REDIS_USERNAME, REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD) and TLS (REDIS_TLS,
 * REDIS_TLS_CA, or `rediss://`) apply to all three. Exactly one topology, or none (embedded mode).
 */
import { readFileSync } from 'node:fs';
import { ConfigError, envBool, type Env } from '../lib/env.js';

/** A `host:port` of REDIS_SENTINELS or REDIS_CLUSTER_NODES. */
export interface RedisEndpoint {
  host: string;
  port: number;
}

/** TLS towards Redis (and the sentinels): on, with an optional CA bundle (PEM) to trust. */
export interface RedisTls {
  /** Contents of REDIS_TLS_CA (default: the system's trusted CAs). */
  ca?: string;
}

interface RedisCommon {
  /** ACL user of the data nodes (REDIS_USERNAME; default: none, i.e. `default`). */
  username?: string;
  /** Password of the data nodes (REDIS_PASSWORD, or the one in REDIS_URL; default: none). */
  password?: string;
  /** TLS on every connection (REDIS_TLS=true, REDIS_TLS_CA or `rediss://`); null: plain TCP. */
  tls: RedisTls | null;
}

/** One validated Redis deployment. */
export type RedisConfig =
  | (RedisCommon & { mode: 'single'; /** REDIS_URL (may hold a password: never log it). */ url: string })
  | (RedisCommon & {
      mode: 'sentinel';
      sentinels: RedisEndpoint[];
      /** REDIS_SENTINEL_MASTER */
      masterName: string;
      /** Password of the sentinels themselves (REDIS_SENTINEL_PASSWORD; default: none). */
      sentinelPassword?: string;
    })
  | (RedisCommon & { mode: 'cluster'; nodes: RedisEndpoint[] });

const TOPOLOGY_VARS = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const;
const DEPENDENT_VARS = ['REDIS_SENTINEL_MASTER', 'REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'REDIS_TLS', 'REDIS_TLS_CA'] as const;

function raw(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/** `host:port,host:port` (IPv6 as `[::1]:port`); a bad entry names the variable. */
export function parseEndpoints(env: Env, name: string): RedisEndpoint[] {
  const entries = (env[name] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) throw new ConfigError(name, 'expected host:port[,host:port…]');
  return entries.map((entry) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]/]+)):(\d{1,5})$/.exec(entry);
    const port = m ? Number(m[3]) : NaN;
    if (!m || port < 1 || port > 65535) throw new ConfigError(name, `"${entry}" is not a host:port`);
    return { host: (m[1] ?? m[2])!, port };
  });
}

/**
 * The Redis deployment the environment names, or null for embedded mode. Throws ConfigError when
 * more than one topology is set, when a topology's part is missing, or when a credential or TLS
 * variable is set without any topology.
 */
export function redisConfigFromEnv(env: Env): RedisConfig | null {
  const set = TOPOLOGY_VARS.filter((n) => raw(env, n));
  if (set.length > 1) throw new ConfigError(set[1]!, `set exactly one of ${TOPOLOGY_VARS.join(', ')}; got ${set.join(' and ')}`);
  if (set.length === 0) {
    const stray = DEPENDENT_VARS.find((n) => raw(env, n));
    if (stray) throw new ConfigError(stray, `needs one of ${TOPOLOGY_VARS.join(', ')} (none is set: embedded mode has no Redis)`);
    return null;
  }
  const mode = set[0] === 'REDIS_URL' ? 'single' : set[0] === 'REDIS_SENTINELS' ? 'sentinel' : 'cluster';

  const username = raw(env, 'REDIS_USERNAME');
  const password = env.REDIS_PASSWORD || undefined; // a password may start or end with a space: kept as given
  if (mode !== 'sentinel') {
    for (const n of ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD'] as const) {
      if (raw(env, n)) throw new ConfigError(n, `is for Sentinel: set REDIS_SENTINELS (not ${set[0]})`);
    }
  }

  let urlTls = false;
  if (mode === 'single') {
    const url = raw(env, 'REDIS_URL')!;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError('REDIS_URL', 'is not a valid URL');
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      throw new ConfigError('REDIS_URL', `must use redis: or rediss:, got ${parsed.protocol}`);
    }
    urlTls = parsed.protocol === 'rediss:';
    if (parsed.password && password !== undefined) throw new ConfigError('REDIS_PASSWORD', 'is set and REDIS_URL holds a password too: keep one (REDIS_PASSWORD keeps it out of the URL)');
    if (parsed.username && username !== undefined) throw new ConfigError('REDIS_USERNAME', 'is set and REDIS_URL holds a user name too: keep one');
  }

  const tlsFlag = raw(env, 'REDIS_TLS') === undefined ? undefined : envBool(env, 'REDIS_TLS', false);
  if (urlTls && tlsFlag === false) throw new ConfigError('REDIS_TLS', 'is false but REDIS_URL uses rediss: (TLS)');
  const caPath = raw(env, 'REDIS_TLS_CA');
  if (caPath && tlsFlag === false) throw new ConfigError('REDIS_TLS_CA', 'is set but REDIS_TLS=false');
  let tls: RedisTls | null = null;
  if (urlTls || tlsFlag === true || caPath) {
    tls = {};
    if (caPath) {
      try {
        tls.ca = readFileSync(caPath, 'utf8');
      } catch (err) {
        throw new ConfigError('REDIS_TLS_CA', `cannot read ${caPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (!tls.ca.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError('REDIS_TLS_CA', `${caPath} holds no PEM certificate`);
    }
  }

  const common: RedisCommon = { tls, ...(username !== undefined && { username }), ...(password !== undefined && { password }) };
  if (mode === 'single') return { ...common, mode, url: raw(env, 'REDIS_URL')! };
  if (mode === 'cluster') return { ...common, mode, nodes: parseEndpoints(env, 'REDIS_CLUSTER_NODES') };
  const masterName = raw(env, 'REDIS_SENTINEL_MASTER');
  if (!masterName) throw new ConfigError('REDIS_SENTINEL_MASTER', 'is required with REDIS_SENTINELS: the name the sentinels monitor the master by');
  const sentinelPassword = env.REDIS_SENTINEL_PASSWORD || undefined;
  return { ...common, mode, sentinels: parseEndpoints(env, 'REDIS_SENTINELS'), masterName, ...(sentinelPassword !== undefined && { sentinelPassword }) };
}

/**
 * A short, secret-free name of the deployment, kept in Config.redisUrl for code that only asks
 * "Redis mode or not": REDIS_URL itself for one Redis (as before), `redis-sentinel://h:p,…/<master>`
 * or `redis-cluster://h:p,…` otherwise. Never connect with it: use createRedisConnection.
 */
export function describeRedis(c: RedisConfig): string {
  const list = (eps: RedisEndpoint[]) => eps.map((e) => (e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`)).join(',');
  if (c.mode === 'single') return c.url;
  if (c.mode === 'sentinel') return `redis-sentinel://${list(c.sentinels)}/${c.masterName}`;
  return `redis-cluster://${list(c.nodes)}`;
}

/** One Redis at `url` with no extra credentials or TLS (tests, tools). */
export function singleRedis(url: string): RedisConfig {
  return { mode: 'single', url, tls: url.startsWith('rediss:') ? {} : null };
}
