/**
 * FANOUT=sharded (the default in Redis mode): a node receives the transitions of the topics it
 * has subscribers for, and only those; a subscribe's snapshot never misses a transition; the
 * channel is dropped when the last subscriber leaves. On one Redis and on a Redis Cluster, with
 * three in-process API nodes: A holds the subscribers, B holds none, C commits the transitions.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/src/config.js';
import { RedisKeys } from '../../server/src/store/keys.js';
import { WsClient, connectSocketIo, emitAck, http, recordSocketIo } from '../harness/clients.js';
import { pollUntil, startInProcess, type InProcessServer } from '../harness/in-process.js';
import { sampleSum, scrape } from '../harness/prometheus.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startRedisCluster, type RedisClusterHandle } from '../harness/redis-topologies.js';
import { TEST_SERVER_ENV } from '../harness/server-process.js';

interface Topology {
  name: string;
  start(): Promise<{ env: Record<string, string>; admin(): Redis | Cluster; stop(): Promise<void> }>;
}

const TOPOLOGIES: Topology[] = [
  {
    name: 'one Redis',
    async start() {
      const redis: RedisHandle = await startRedis();
      return { env: { REDIS_URL: redis.url }, admin: () => new Redis(redis.url), stop: () => redis.stop() };
    },
  },
  {
    name: 'Redis Cluster',
    async start() {
      const cluster: RedisClusterHandle = await startRedisCluster();
      const [host, port] = cluster.nodes.split(',')[0].split(':');
      return {
        env: { REDIS_CLUSTER_NODES: cluster.nodes },
        admin: () => new Cluster([{ host, port: Number(port) }]),
        stop: () => cluster.stop(),
      };
    },
  },
];

/** State messages a node received from Redis (handoff_fanout_messages_received_total). */
async function received(node: InProcessServer): Promise<number> {
  return sampleSum(await scrape(node.base), 'handoff_fanout_messages_received_total');
}

async function createQr(base: string): Promise<{ id: string; topic: string; watchToken: string }> {
  const res = await http(base, 'POST', '/v1/qr', { headers: { 'user-agent': 'TestBrowser/1.0' } });
  if (res.status !== 201) throw new Error(`create failed: ${res.status}`);
  return res.body;
}

describe.each(TOPOLOGIES)('sharded fan-out ($name)', (topology) => {
  let stopRedis: () => Promise<void>;
  let admin: Redis | Cluster;
  let keys: RedisKeys;
  let a: InProcessServer; // subscribers
  let b: InProcessServer; // none
  let c: InProcessServer; // commits transitions

  /** Sharded subscribers of a topic's channel across the deployment. */
  async function channelSubscribers(topic: string): Promise<number> {
    const channel = keys.topicChannel(topic);
    // Each master counts its own subscribers: ask them all (a Cluster client sends PUBSUB to any node).
    const nodes = admin instanceof Cluster ? admin.nodes('master') : [admin];
    const replies = await Promise.all(nodes.map((n) => n.call('PUBSUB', 'SHARDNUMSUB', channel) as Promise<[string, number]>));
    return replies.reduce((sum, [, n]) => sum + Number(n), 0);
  }

  beforeAll(async () => {
    const t = await topology.start();
    stopRedis = t.stop;
    admin = t.admin();
    const prefix = uniquePrefix('fanout');
    keys = new RedisKeys(prefix);
    const config = () => loadConfig({ ...TEST_SERVER_ENV, ...t.env, REDIS_PREFIX: prefix, ROLE: 'api' });
    a = await startInProcess(config());
    b = await startInProcess(config());
    c = await startInProcess(config());
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a, b, c].map((n) => n?.close()));
    admin?.disconnect();
    await stopRedis?.();
  });

  it('a node with no subscriber of a topic receives none of its transitions', async () => {
    const flows = await Promise.all(Array.from({ length: 10 }, () => createQr(a.base)));
    const ws = await WsClient.connect(a.base);
    try {
      for (const qr of flows) expect(await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({ ok: true });
      const [beforeA, beforeB] = [await received(a), await received(b)];
      for (const qr of flows) await c.server.handoff.qr.cancelByServer(qr.id);
      for (const qr of flows) await ws.states.waitFor((s) => s.topic === qr.topic && s.state === 'cancelled');
      expect((await received(a)) - beforeA).toBe(10);
      expect((await received(b)) - beforeB).toBe(0);
    } finally {
      ws.socket.close();
    }
  });

  it('a subscribe racing many transitions never misses the final state (Socket.IO, /v1/ws, long-poll)', async () => {
    const flows = await Promise.all(Array.from({ length: 60 }, () => createQr(c.base)));
    const socket = await connectSocketIo(a.base);
    const ws = await WsClient.connect(a.base);
    try {
      const pushes = recordSocketIo(socket);
      const outcomes = await Promise.all(
        flows.map(async (qr, i) => {
          // Fire the cancel on node C while node A is still subscribing.
          const cancel = c.server.handoff.qr.cancelByServer(qr.id);
          let snapshot: string;
          if (i % 3 === 0) snapshot = (await emitAck(socket, 'subscribe', { topic: qr.topic, watchToken: qr.watchToken })).state.state;
          else if (i % 3 === 1) snapshot = (await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken })).state.state;
          else {
            const res = await http(a.base, 'GET', `/v1/flows/${qr.topic}?after=1&wait=10`, { headers: { 'watch-token': qr.watchToken } });
            snapshot = res.body.state;
          }
          await cancel;
          if (snapshot === 'cancelled') return 'cancelled';
          const rec = i % 3 === 0 ? pushes : ws.states;
          return (await rec.waitFor((s) => s.topic === qr.topic && s.state === 'cancelled', 5_000)).state;
        }),
      );
      expect(outcomes).toEqual(flows.map(() => 'cancelled'));
    } finally {
      socket.close();
      ws.socket.close();
    }
  });

  it('a transition published while the SSUBSCRIBE is still on its way reaches the subscriber (join awaits the SSUBSCRIBE)', async () => {
    // Hold node A's SSUBSCRIBE of the topic back, and commit a transition on node C just before it
    // goes out: the transition is published while A is not subscribed yet. A subscribe that read
    // its snapshot before the SSUBSCRIBE was acknowledged would keep `pending` for good.
    const qr = await createQr(a.base);
    const sub = a.server.handoff.backend.redis!.sub;
    const original = sub.ssubscribe.bind(sub) as (...channels: string[]) => Promise<unknown>;
    let acked = false;
    const held = (...channels: string[]): Promise<unknown> => {
      if (!channels.includes(keys.topicChannel(qr.topic))) return original(...channels);
      return (async () => {
        await pollUntil(() => acked, (v) => v, 500).catch(() => {}); // the subscribe's ack, or half a second
        await c.server.handoff.qr.cancelByServer(qr.id);
        return original(...channels);
      })();
    };
    (sub as unknown as { ssubscribe: typeof held }).ssubscribe = held;
    const ws = await WsClient.connect(a.base);
    try {
      const reply = await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken });
      acked = true;
      expect(reply).toMatchObject({ ok: true });
      if (reply.state.state !== 'cancelled') await ws.states.waitFor((s) => s.topic === qr.topic && s.state === 'cancelled', 3_000);
    } finally {
      (sub as unknown as { ssubscribe: typeof original }).ssubscribe = original;
      ws.socket.close();
    }
  });

  it('unsubscribing stops delivery: the channel is dropped and the node receives nothing more', async () => {
    const qr = await createQr(a.base);
    const ws = await WsClient.connect(a.base);
    const socket = await connectSocketIo(a.base);
    try {
      expect(await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({ ok: true });
      expect(await emitAck(socket, 'subscribe', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({ ok: true });
      expect(await channelSubscribers(qr.topic)).toBe(1); // one channel per node, whatever its subscribers
      expect(await ws.request('unsubscribe', { topic: qr.topic })).toMatchObject({ ok: true });
      expect(await channelSubscribers(qr.topic)).toBe(1); // the socket still watches
      socket.close(); // the room's last socket leaves
      await pollUntil(() => channelSubscribers(qr.topic), (n) => n === 0);
      const before = await received(a);
      await c.server.handoff.qr.cancelByServer(qr.id);
      // A marker on a watched topic, published after the cancel, proves the cancel had its chance to arrive.
      const marker = await createQr(a.base);
      expect(await ws.request('subscribe', { topic: marker.topic, watchToken: marker.watchToken })).toMatchObject({ ok: true });
      await c.server.handoff.qr.cancelByServer(marker.id);
      await ws.states.waitFor((s) => s.topic === marker.topic && s.state === 'cancelled');
      expect((await received(a)) - before).toBe(1);
      expect(ws.states.states.filter((s) => s.topic === qr.topic && s.state === 'cancelled')).toEqual([]);
    } finally {
      socket.close();
      ws.socket.close();
    }
  });
});

describe('FANOUT=broadcast (rollback)', () => {
  let redis: RedisHandle;
  let a: InProcessServer;
  let c: InProcessServer;

  beforeAll(async () => {
    redis = await startRedis();
    const config = () => loadConfig({ ...TEST_SERVER_ENV, REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('broadcast'), FANOUT: 'broadcast', ROLE: 'api' });
    const env = config();
    a = await startInProcess(env);
    c = await startInProcess(env);
  });
  afterAll(async () => {
    await Promise.all([a, c].map((n) => n?.close()));
    await redis?.stop();
  });

  it('still carries a transition to a subscriber on another node, over the Socket.IO adapter', async () => {
    const qr = await createQr(a.base);
    const ws = await WsClient.connect(a.base);
    try {
      expect(await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({ ok: true });
      await c.server.handoff.qr.cancelByServer(qr.id);
      await ws.states.waitFor((s) => s.topic === qr.topic && s.state === 'cancelled');
      expect(await received(a)).toBe(0); // the sharded path is not in use
    } finally {
      ws.socket.close();
    }
  });
});
