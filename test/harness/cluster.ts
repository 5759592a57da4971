import { startRedis, uniquePrefix, type RedisHandle } from './redis-server.js';
import { startRedisCluster, startSentinelGroup, type RedisClusterHandle, type SentinelGroup } from './redis-topologies.js';
import { startServerProcess, type ServerProcess } from './server-process.js';
import { http } from './clients.js';

/** Accounts every test cluster seeds. */
export const ANA = { email: 'ana@example.com', password: 'ana-password-123', displayName: 'Ana' };
export const BOB = { email: 'bob@example.com', password: 'bob-password-123', displayName: 'Bob' };
export const SEED_USERS = [ANA, BOB].map((u) => `${u.email}:${u.password}:${u.displayName}`).join(',');

/** Which Redis deployment (contract §8): one redis-server, a Sentinel group, or a Redis Cluster. */
export type RedisTopology = 'single' | 'sentinel' | 'cluster';

/** How a test cluster runs: embedded (one process, no Redis) or Redis with N nodes. */
export interface ClusterMode {
  name: string;
  redis: boolean;
  nodes: number;
  /** With `redis`: the deployment (default `single`). */
  topology?: RedisTopology;
}

export const MODES: ClusterMode[] = [
  { name: 'embedded', redis: false, nodes: 1 },
  { name: 'redis, one node', redis: true, nodes: 1 },
  { name: 'redis, two nodes', redis: true, nodes: 2 },
  { name: 'sentinel, two nodes', redis: true, nodes: 2, topology: 'sentinel' },
  { name: 'cluster, two nodes', redis: true, nodes: 2, topology: 'cluster' },
];

/** A running Redis deployment of any topology, and the variables that point a server at it. */
export interface RedisDeployment {
  topology: RedisTopology;
  /** REDIS_URL, or REDIS_SENTINELS + REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_NODES. */
  env: Record<string, string>;
  /** Set for `single`. */
  redis: RedisHandle | null;
  /** Set for `sentinel`. */
  sentinel: SentinelGroup | null;
  /** Set for `cluster`. */
  cluster: RedisClusterHandle | null;
  stop(): Promise<void>;
}

/** Start a private Redis deployment: one redis-server, a Sentinel group (master, replica, 3 sentinels) or a 3+3 Redis Cluster. */
export async function startRedisDeployment(topology: RedisTopology = 'single', opts: { clusterReplicas?: 0 | 1 } = {}): Promise<RedisDeployment> {
  if (topology === 'sentinel') {
    const sentinel = await startSentinelGroup();
    return { topology, env: { REDIS_SENTINELS: sentinel.sentinels, REDIS_SENTINEL_MASTER: sentinel.masterName }, redis: null, sentinel, cluster: null, stop: () => sentinel.stop() };
  }
  if (topology === 'cluster') {
    const cluster = await startRedisCluster({ replicasPerMaster: opts.clusterReplicas });
    return { topology, env: { REDIS_CLUSTER_NODES: cluster.nodes }, redis: null, sentinel: null, cluster, stop: () => cluster.stop() };
  }
  const redis = await startRedis();
  return { topology, env: { REDIS_URL: redis.url }, redis, sentinel: null, cluster: null, stop: () => redis.stop() };
}

export interface Cluster {
  /** The redis-server of a `single` deployment (null otherwise, and in embedded mode). */
  redis: RedisHandle | null;
  /** The Redis deployment (null in embedded mode). */
  deployment: RedisDeployment | null;
  /** The variables every process of this cluster shares (Redis, prefix, seed users, `env`): to start workers. */
  env: Record<string, string>;
  nodes: ServerProcess[];
  /** Where the browser talks: the first node. */
  browser: string;
  /** Where the phone talks: the last node (another node when there are two). */
  phone: string;
  stop(): Promise<void>;
}

/** Start a cluster of real server processes (and a private redis-server when asked). */
export async function startCluster(mode: ClusterMode, env: Record<string, string> = {}): Promise<Cluster> {
  const deployment = mode.redis ? await startRedisDeployment(mode.topology) : null;
  const redis = deployment?.redis ?? null;
  const shared = {
    SEED_USERS,
    ...(deployment ? { ...deployment.env, REDIS_PREFIX: uniquePrefix('cluster') } : {}),
    ...env,
  };
  const nodes: ServerProcess[] = [];
  try {
    for (let i = 0; i < mode.nodes; i++) nodes.push(await startServerProcess(shared));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    await deployment?.stop();
    throw err;
  }
  return {
    redis,
    deployment,
    env: shared,
    nodes,
    browser: nodes[0].url,
    phone: nodes[nodes.length - 1].url,
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      await deployment?.stop();
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
