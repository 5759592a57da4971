/**
 * Fan-out benchmark (issue 15): the receive cost of API nodes that have NO subscribers, as the
 * fleet grows, FANOUT=broadcast next to FANOUT=sharded in the same run, on one Redis Cluster.
 *
 *   node --conditions=source --import tsx bench/fanout.ts
 *
 * For each node count (BENCH_FANOUT_NODES, default 2,4,8) and each mode: N real API server
 * processes (ROLE=api, REDIS_CLUSTER_NODES, FANOUT=<mode>); BENCH_FANOUT_TOPICS flows (default
 * 200) created on node 0 and subscribed there over /v1/ws; then the bench process publishes
 * BENCH_FANOUT_RATE committed states per second (default 1,000) of those topics for
 * BENCH_FANOUT_SECONDS (default 10), with the server's own Fanout classes as a worker process does
 * (ShardedFanout: SPUBLISH; AdapterFanout over @socket.io/redis-emitter: the adapter channel).
 * Measured: CPU seconds of each server process tree over the window (/proc), as a share of one
 * core; the figure that matters is the mean of the nodes without subscribers (1..N-1), and
 * handoff_fanout_messages_received_total on them. Results on stdout as a markdown table.
 */
import { Emitter } from '@socket.io/redis-emitter';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import type { FlowState } from '@handoff/protocol';
import { AdapterFanout, type Fanout } from '../server/src/realtime/fanout.js';
import { ShardedFanout } from '../server/src/realtime/sharded-fanout.js';
import { TopicHub } from '../server/src/realtime/topic-hub.js';
import { RedisKeys } from '../server/src/store/keys.js';
import { WsClient, http } from '../test/harness/clients.js';
import { sampleSum, scrape } from '../test/harness/prometheus.js';
import { uniquePrefix } from '../test/harness/redis-server.js';
import { startRedisCluster } from '../test/harness/redis-topologies.js';
import { startServerProcess, type ServerProcess } from '../test/harness/server-process.js';
import { sleep, treeCpu } from './lib/proc.js';
import { log, table } from './lib/util.js';

const env = (name: string, def: string) => process.env[name] || def;
const NODE_COUNTS = env('BENCH_FANOUT_NODES', '2,4,8').split(',').map(Number);
const TOPICS = Number(env('BENCH_FANOUT_TOPICS', '200'));
const RATE = Number(env('BENCH_FANOUT_RATE', '1000'));
const SECONDS = Number(env('BENCH_FANOUT_SECONDS', '10'));
const MODES = ['broadcast', 'sharded'] as const;

async function run(nodesSpec: string, n: number, mode: (typeof MODES)[number]) {
  const prefix = uniquePrefix(`fan${n}${mode[0]}`);
  const shared = { REDIS_CLUSTER_NODES: nodesSpec, REDIS_PREFIX: prefix, ROLE: 'api', FANOUT: mode };
  const nodes: ServerProcess[] = [];
  const clients: WsClient[] = [];
  const [host, port] = nodesSpec.split(',')[0].split(':');
  const pub = new Cluster([{ host, port: Number(port) }]);
  try {
    for (let i = 0; i < n; i++) nodes.push(await startServerProcess(shared));
    const snapshots: FlowState[] = [];
    for (let i = 0; i < TOPICS; i++) {
      if (i % 50 === 0) clients.push(await WsClient.connect(nodes[0].url));
      const qr = (await http(nodes[0].url, 'POST', '/v1/qr')).body;
      const reply = await clients.at(-1)!.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken });
      snapshots.push(reply.state);
    }
    const hub = new TopicHub();
    const quiet = pino({ level: 'silent' });
    const keys = new RedisKeys(prefix);
    const fanout: Fanout = mode === 'sharded' ? new ShardedFanout(hub, pub, keys, quiet) : new AdapterFanout(hub, new Emitter(pub, { key: keys.adapterChannel() }), quiet);
    const before = await Promise.all(nodes.map(async (node) => sampleSum(await scrape(node.url), 'handoff_fanout_messages_received_total')));
    await sleep(1000);
    const cpu0 = nodes.map((node) => treeCpu(node.child.pid!));
    const t0 = performance.now();
    let sent = 0;
    // 1,000/s in 10 ms ticks; the version rises so every push is a new state.
    while (performance.now() - t0 < SECONDS * 1000) {
      const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
      for (; sent < due; sent++) {
        const s = snapshots[sent % snapshots.length];
        fanout.publish({ ...s, version: s.version + 1 + Math.floor(sent / snapshots.length) });
      }
      await sleep(10);
    }
    await sleep(500); // let the last messages land
    const wall = (performance.now() - t0) / 1000;
    const cpu = nodes.map((node, i) => (treeCpu(node.child.pid!) - cpu0[i]) / wall);
    const after = await Promise.all(nodes.map(async (node) => sampleSum(await scrape(node.url), 'handoff_fanout_messages_received_total')));
    const idle = cpu.slice(1);
    return {
      n,
      mode,
      sent,
      subscriberNode: cpu[0],
      idleMean: idle.reduce((a, b) => a + b, 0) / idle.length,
      idleMax: Math.max(...idle),
      idleReceived: after.slice(1).reduce((a, b, i) => a + b - before[i + 1], 0) / idle.length,
    };
  } finally {
    for (const c of clients) c.socket.close();
    await Promise.all(nodes.map((node) => node.kill()));
    pub.disconnect();
  }
}

const cluster = await startRedisCluster();
const rows: string[][] = [];
try {
  for (const n of NODE_COUNTS) {
    for (const mode of MODES) {
      log(`fan-out: ${n} nodes, FANOUT=${mode}`);
      const r = await run(cluster.nodes, n, mode);
      log(JSON.stringify(r));
      rows.push([String(r.n), r.mode, String(r.sent), (r.subscriberNode * 100).toFixed(1), (r.idleMean * 100).toFixed(1), (r.idleMax * 100).toFixed(1), r.mode === 'sharded' ? r.idleReceived.toFixed(0) : 'n/a']);
    }
  }
} finally {
  await cluster.stop();
}
console.log(
  table(['API nodes', 'FANOUT', 'states published', 'CPU % node 0 (subscribers)', 'CPU % per node without subscribers (mean)', '(max)', 'messages received per node without subscribers'], rows),
);
process.exit(0);
