/**
 * What WAIT (store/redis-durability.ts) adds to a final transition, on a Sentinel group (master,
 * replica, three sentinels, from test/harness/redis-topologies.ts) through the Sentinel-mode store
 * connection: N flows confirmed one after another with REDIS_WAIT_REPLICAS=0, then N with 1; prints
 * p50/p99 of the confirm (the store's transition, as flow-service awaits it) for each.
 *
 *   node --conditions=source --import tsx bench/wait-latency.ts [N=2000]
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { FlowRecord } from '../server/src/flows/flow-record.js';
import { RedisFlowStore } from '../server/src/flows/redis-flow-store.js';
import { RedisKeys } from '../server/src/store/keys.js';
import { createRedisConnection } from '../server/src/store/redis-connection.js';
import { startSentinelGroup } from '../test/harness/redis-topologies.js';

const N = Number(process.argv[2] ?? 2000);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function run(store: RedisFlowStore): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    const now = Date.now();
    const id = randomBytes(16).toString('base64url');
    const rec: FlowRecord = { kind: 'qr', id, state: 'pending', version: 1, createdAt: now, expiresAt: now + 60_000, watchTokenHash: 'h' };
    await store.create(rec, 60_000);
    const base = { kind: 'qr' as const, id, now, tombstoneMs: 60_000 };
    await store.transition({ ...base, to: 'scanned', from: ['pending'], patch: { userId: 'u' } });
    const t0 = performance.now();
    const r = await store.transition({ ...base, to: 'confirmed', from: ['scanned'], requireUserId: 'u' });
    out.push(performance.now() - t0);
    if (!r.ok) throw new Error('confirm failed');
  }
  return out;
}

const group = await startSentinelGroup();
const client = createRedisConnection({ mode: 'sentinel', sentinels: group.sentinels.split(',').map((s) => ({ host: s.split(':')[0]!, port: Number(s.split(':')[1]) })), masterName: group.masterName, tls: null }, 'command') as Redis;
await client.connect();
try {
  let unreplicated = 0;
  const keys = new RedisKeys('bench-wait:');
  const without = new RedisFlowStore(client, { keys });
  const withWait = new RedisFlowStore(client, { keys, durability: { replicas: 1, timeoutMs: 500 }, onUnreplicated: () => unreplicated++ });
  await run(without); // warm-up
  for (const round of [1, 2]) {
    const a = await run(without);
    const b = await run(withWait);
    const f = (x: number) => x.toFixed(3);
    console.log(`round ${round}, ${N} confirms each: without WAIT p50 ${f(pct(a, 50))} ms p99 ${f(pct(a, 99))} ms | with WAIT 1 p50 ${f(pct(b, 50))} ms p99 ${f(pct(b, 99))} ms | unreplicated ${unreplicated}`);
  }
} finally {
  client.disconnect();
  await group.stop();
}
