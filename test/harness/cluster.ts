import { startRedis, uniquePrefix, type RedisHandle } from './redis-server.js';
import { startServerProcess, type ServerProcess } from './server-process.js';
import { http } from './clients.js';

/** Accounts every test cluster seeds. */
export const ANA = { email: 'ana@example.com', password: 'ana-password-123', displayName: 'Ana' };
export const BOB = { email: 'bob@example.com', password: 'bob-password-123', displayName: 'Bob' };
export const SEED_USERS = [ANA, BOB].map((u) => `${u.email}:${u.password}:${u.displayName}`).join(',');

/** How a test cluster runs: embedded (one process, no Redis) or Redis with N nodes. */
export interface ClusterMode {
  name: string;
  redis: boolean;
  nodes: number;
}

export const MODES: ClusterMode[] = [
  { name: 'embedded', redis: false, nodes: 1 },
  { name: 'redis, one node', redis: true, nodes: 1 },
  { name: 'redis, two nodes', redis: true, nodes: 2 },
];

export interface Cluster {
  redis: RedisHandle | null;
  nodes: ServerProcess[];
  /** Where the browser talks: the first node. */
  browser: string;
  /** Where the phone talks: the last node (another node when there are two). */
  phone: string;
  stop(): Promise<void>;
}

/** Start a cluster of real server processes (and a private redis-server when asked). */
export async function startCluster(mode: ClusterMode, env: Record<string, string> = {}): Promise<Cluster> {
  const redis = mode.redis ? await startRedis() : null;
  const shared = {
    SEED_USERS,
    ...(redis ? { REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('cluster') } : {}),
    ...env,
  };
  const nodes: ServerProcess[] = [];
  try {
    for (let i = 0; i < mode.nodes; i++) nodes.push(await startServerProcess(shared));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    await redis?.stop();
    throw err;
  }
  return {
    redis,
    nodes,
    browser: nodes[0].url,
    phone: nodes[nodes.length - 1].url,
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      await redis?.stop();
    },
  };
}

/** Log in with a password and return the JWT. */
export async function login(base: string, user: { email: string; password: string }): Promise<string> {
  const res = await http(base, 'POST', '/v1/sessions', { body: { email: user.email, password: user.password } });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

/** Create a QR flow as a browser would. */
export async function createQr(base: string): Promise<{ id: string; topic: string; watchToken: string; [k: string]: any }> {
  const res = await http(base, 'POST', '/v1/qr', { headers: { 'user-agent': 'TestBrowser/1.0' } });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
