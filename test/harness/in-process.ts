/**
 * In-process Handoff servers for integration tests that reach into the services (code records,
 * queues): one config builder and one starter for embedded and Redis mode, a private
 * redis-server per test file, and a poll for conditions that have no event to wait on.
 */
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig, type Config } from '../../server/src/config.js';
import { createCore, type Core } from '../../server/src/core.js';
import { Metrics } from '../../server/src/observability/metrics.js';
import { LocalFanout } from '../../server/src/realtime/fanout.js';
import { TopicHub } from '../../server/src/realtime/topic-hub.js';
import { openBackend } from '../../server/src/store/backend.js';
import { createHandoffServer, type HandoffServer } from '../../server/src/server.js';
import { startRedis, uniquePrefix, type RedisHandle } from './redis-server.js';
import { TEST_SERVER_ENV } from './server-process.js';

/** The two stores every in-process suite runs against. */
export const STORE_MODES = [
  { name: 'embedded', redis: false },
  { name: 'redis', redis: true },
] as const;
export type StoreMode = (typeof STORE_MODES)[number];

/** A private redis-server for this test file: started before its tests, stopped after them. */
export function useRedisServer(): { readonly url: string } {
  let redis: RedisHandle | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());
  return {
    get url() {
      if (!redis) throw new Error('the redis-server is not started yet (use it inside a test or a hook)');
      return redis.url;
    },
  };
}

/**
 * A validated test config: free port, cheap bcrypt, the shared JWT secret, no demo user; in Redis
 * mode a fresh key prefix named after `prefixName`. `env` adds or overrides variables.
 */
export function testConfig(mode: StoreMode, redis: { readonly url: string }, prefixName: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    ...TEST_SERVER_ENV,
    ...(mode.redis ? { REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix(prefixName) } : {}),
    ...env,
  });
}

export interface InProcessServer {
  server: HandoffServer;
  base: string;
  close(): Promise<void>;
}

/** Build and start a server on `config`; its logs go nowhere unless a logger is given. */
export async function startInProcess(config: Config, logger: Logger = pino({ level: 'silent' })): Promise<InProcessServer> {
  const server = await createHandoffServer(config, { logger });
  return { server, base: await server.listen(), close: () => server.close() };
}

/**
 * Every capability on `config`'s backend, with no HTTP and no queue workers started: for tests
 * that drive a service or a worker directly. The caller closes `core.backend` and `core.users`.
 */
export async function openCore(config: Config, log: Logger = pino({ level: 'silent' })): Promise<Core> {
  const backend = await openBackend(config, log);
  const hub = new TopicHub();
  return createCore({ config, log, backend, hub, fanout: new LocalFanout(hub), metrics: new Metrics() });
}

/** Read until `ok` holds (every 25 ms, at most `timeoutMs`); the last value read. */
export async function pollUntil<T>(read: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
