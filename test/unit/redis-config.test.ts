/**
 * The Redis deployment from the environment (REDIS_URL | REDIS_SENTINELS + REDIS_SENTINEL_MASTER |
 * REDIS_CLUSTER_NODES, credentials, TLS) and the ioredis options the connection factory builds.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/src/config.js';
import { createRedisConnection, redisConnectionOptions, REDIS_COMMAND_TIMEOUT_MS } from '../../server/src/store/redis-connection.js';
import type { RedisConfig } from '../../server/src/store/redis-config.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const caFile = () => {
  const f = join(mkdtempSync(join(tmpdir(), 'handoff-ca-')), 'ca.pem');
  writeFileSync(f, PEM);
  return f;
};

describe('Redis deployment from the environment', () => {
  it('has none by default (embedded mode)', () => {
    expect(loadConfig({})).toMatchObject({ redis: null, redisUrl: null });
  });

  it('reads one Redis from REDIS_URL, keeping redisUrl as given', () => {
    const c = loadConfig({ REDIS_URL: 'redis://127.0.0.1:7000' });
    expect(c.redis).toEqual({ mode: 'single', url: 'redis://127.0.0.1:7000', tls: null });
    expect(c.redisUrl).toBe('redis://127.0.0.1:7000');
  });

  it('reads a Sentinel deployment, with a secret-free redisUrl that turns Redis mode on', () => {
    const c = loadConfig({ REDIS_SENTINELS: '10.0.0.1:26379, [::1]:26380', REDIS_SENTINEL_MASTER: 'mymaster', REDIS_PASSWORD: 'pw', REDIS_SENTINEL_PASSWORD: 'spw' });
    expect(c.redis).toEqual({
      mode: 'sentinel',
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }],
      masterName: 'mymaster',
      password: 'pw',
      sentinelPassword: 'spw',
      tls: null,
    });
    expect(c.redisUrl).toBe('redis-sentinel://10.0.0.1:26379,[::1]:26380/mymaster');
    expect(c.seedDemoUser).toBe(false);
  });

  it('reads a Cluster deployment with TLS and a CA file', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: 'a.example:7000,b.example:7001', REDIS_TLS: 'true', REDIS_TLS_CA: caFile(), REDIS_USERNAME: 'handoff', REDIS_PASSWORD: 'pw' });
    expect(c.redis).toEqual({ mode: 'cluster', nodes: [{ host: 'a.example', port: 7000 }, { host: 'b.example', port: 7001 }], tls: { ca: PEM }, username: 'handoff', password: 'pw' });
    expect(c.redisUrl).toBe('redis-cluster://a.example:7000,b.example:7001');
    expect(c.redisUrl).not.toContain('pw');
  });

  it('turns TLS on for rediss:// URLs', () => {
    expect(loadConfig({ REDIS_URL: 'rediss://r.example:6380' }).redis?.tls).toEqual({});
  });

  it.each([
    [{ REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'b:2' }, 'REDIS_CLUSTER_NODES', /exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES/],
    [{ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_CLUSTER_NODES', /exactly one/],
    [{ REDIS_SENTINELS: 'a:1' }, 'REDIS_SENTINEL_MASTER', /is required with REDIS_SENTINELS/],
    [{ REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINEL_MASTER', /needs one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES/],
    [{ REDIS_PASSWORD: 'pw' }, 'REDIS_PASSWORD', /needs one of/],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINEL_MASTER', /is for Sentinel/],
    [{ REDIS_CLUSTER_NODES: 'a.example' }, 'REDIS_CLUSTER_NODES', /"a.example" is not a host:port/],
    [{ REDIS_SENTINELS: 'a:99999', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS', /is not a host:port/],
    [{ REDIS_CLUSTER_NODES: ' , ' }, 'REDIS_CLUSTER_NODES', /expected host:port/],
    [{ REDIS_URL: 'redis://:secret@a:1', REDIS_PASSWORD: 'pw' }, 'REDIS_PASSWORD', /REDIS_URL holds a password too/],
    [{ REDIS_URL: 'rediss://a:1', REDIS_TLS: 'false' }, 'REDIS_TLS', /rediss/],
    [{ REDIS_URL: 'redis://a:1', REDIS_TLS: 'maybe' }, 'REDIS_TLS', /true or false/],
    [{ REDIS_URL: 'redis://a:1', REDIS_TLS_CA: '/nonexistent/ca.pem' }, 'REDIS_TLS_CA', /cannot read/],
  ] as const)('refuses %o, naming %s', (env, variable, message) => {
    let err: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as Error).message).toMatch(message);
    // A secret never lands in the message.
    expect((err as Error).message).not.toMatch(/secret|pw\b/);
  });
});

describe('Redis connection factory', () => {
  const sentinel: RedisConfig = { mode: 'sentinel', sentinels: [{ host: 's1', port: 26379 }], masterName: 'm', password: 'pw', sentinelPassword: 'spw', username: 'u', tls: { ca: PEM } };
  const cluster: RedisConfig = { mode: 'cluster', nodes: [{ host: 'n1', port: 7000 }], password: 'pw', tls: {} };

  it('keeps the command role failing fast on every topology', () => {
    const single = redisConnectionOptions({ mode: 'single', url: 'redis://a:1', tls: null }, 'command');
    expect(single).toMatchObject({ mode: 'single', url: 'redis://a:1', options: { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: REDIS_COMMAND_TIMEOUT_MS, lazyConnect: true } });
    expect(redisConnectionOptions(sentinel, 'command').options).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
    const c = redisConnectionOptions(cluster, 'command');
    expect(c).toMatchObject({ mode: 'cluster', options: { enableOfflineQueue: false, lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1, commandTimeout: REDIS_COMMAND_TIMEOUT_MS } } });
  });

  it('gives Sentinel connections the master name, both passwords and TLS towards sentinels and master', () => {
    expect(redisConnectionOptions(sentinel, 'pub').options).toMatchObject({
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'm',
      role: 'master',
      username: 'u',
      password: 'pw',
      sentinelPassword: 'spw',
      tls: { ca: PEM },
      enableTLSForSentinelMode: true,
      sentinelTLS: { ca: PEM },
      maxRetriesPerRequest: null,
    });
  });

  it('gives Cluster nodes the credentials, TLS and the role options (BullMQ workers: no retry limit)', () => {
    const o = redisConnectionOptions(cluster, 'queue-worker');
    expect(o).toMatchObject({ mode: 'cluster', nodes: [{ host: 'n1', port: 7000 }], options: { enableReadyCheck: false, redisOptions: { password: 'pw', tls: {}, maxRetriesPerRequest: null } } });
    expect(o.mode === 'cluster' && o.options.redisOptions).not.toHaveProperty('enableReadyCheck');
  });

  it('reconnects a one-Redis or Sentinel connection that lands on a demoted, read-only node', () => {
    for (const config of [{ mode: 'single', url: 'redis://a:1', tls: null } as const, sentinel]) {
      const o = redisConnectionOptions(config, 'command').options as { reconnectOnError: (err: Error) => boolean };
      expect(o.reconnectOnError(new Error("READONLY You can't write against a read only replica."))).toBe(true);
      expect(o.reconnectOnError(new Error('ERR wrong number of arguments'))).toBe(false);
    }
    // Off: a +switch-master during a reconnect made ioredis end the connection for good (redis-connection.ts).
    expect(redisConnectionOptions(sentinel, 'command').options).toMatchObject({ failoverDetector: false });
  });

  it('builds a Redis for one Redis and for Sentinel, and a Cluster for Cluster', () => {
    const made = [
      createRedisConnection({ mode: 'single', url: 'redis://127.0.0.1:1', tls: null }, 'command'),
      createRedisConnection({ ...sentinel, tls: null }, 'command'),
      createRedisConnection({ ...cluster, tls: null }, 'command'),
    ];
    try {
      expect(made[0]).toBeInstanceOf(Redis);
      expect(made[1]).toBeInstanceOf(Redis);
      expect(made[2]).toBeInstanceOf(Cluster);
    } finally {
      for (const c of made) c.disconnect();
    }
  });
});
