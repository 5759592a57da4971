/**
 * Benchmark 2: server memory per idle subscribed connection.
 *
 * Four servers, one after the other, each in a fresh process started with --expose-gc:
 *   Handoff over Socket.IO, Handoff over /v1/ws, a bare Socket.IO server, a bare `ws` server.
 * For each: prepare (Handoff: create N QR flows over HTTP, so the flows' own memory is in the
 * baseline), warm up (a few hundred connections opened, subscribed and closed, so code paths are
 * compiled), force GC and wait for RSS to settle (baseline), open N idle subscribed connections
 * from one client process, force GC and settle again. bytes/connection = (after - before) / N.
 * RSS is read from /proc/<pid>/status (VmRSS) for all four; heapUsed comes from the server's own
 * process.memoryUsage() right after the forced GC (bench IPC channel, see servers/ipc.ts).
 * A sample is also taken at N/2: (after - mid) / (N/2) is the marginal cost, which free heap pages
 * left over in the baseline cannot flatter.
 */
import { SEED_USERS } from '../test/harness/cluster.js';
import { TEST_JWT_SECRET } from '../test/harness/server-process.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../test/harness/redis-server.js';
import { closeHolder, holderConnect, startHolder, type Holder } from './lib/holders.js';
import { fdCount, rssOf, sleep, startServer, type ServerChild } from './lib/proc.js';
import { log, mapLimit } from './lib/util.js';

export interface MemoryOptions {
  /** Connections per server. */
  connections: number;
  /** Connections opened and closed before the baseline. */
  warmup: number;
  /** Concurrent connection attempts from the client process. */
  concurrency: number;
  /** Run Handoff in Redis mode (and the bare Socket.IO server with the Redis adapter). */
  redis: boolean;
  /** Only these targets (by id), or all. */
  only?: string[];
}

export interface MemSample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface MemoryResult {
  id: string;
  label: string;
  connections: number;
  failed: number;
  connectMs: number;
  before: MemSample;
  /** With the first half of the connections open. */
  mid: MemSample;
  after: MemSample;
  serverFds: number;
  rssPerConn: number;
  heapPerConn: number;
  externalPerConn: number;
  /** Cost of the second half alone: (after - mid) / (N - N/2). */
  rssMarginal: number;
  heapMarginal: number;
}

export interface Target {
  id: string;
  label: string;
  script: string;
  transport: 'sio' | 'ws';
  event: string;
  env(redis: RedisHandle | null): Record<string, string>;
  subs(server: ServerChild, count: number): Promise<Record<string, unknown>[]>;
}

const handoffEnv = (redis: RedisHandle | null): Record<string, string> => ({
  LOG_LEVEL: 'warn',
  BCRYPT_COST: '4',
  JWT_SECRET: TEST_JWT_SECRET,
  SEED_DEMO_USER: 'false',
  SEED_USERS,
  NODE_ENV: 'production',
  QR_TTL_SECONDS: '600',
  QR_IP_PER_MINUTE: '0', // thousands of flows from one client IP
  ...(redis ? { REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('bench-mem') } : {}),
});

/** Create `count` QR flows on a Handoff server; subscribe payloads {topic, watchToken}. */
async function createFlows(server: ServerChild, count: number): Promise<Record<string, unknown>[]> {
  const started = Date.now();
  const flows = await mapLimit(Array.from({ length: count }), 32, async () => {
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(server.url + '/v1/qr', { method: 'POST', headers: { 'user-agent': 'Bench/1.0' } });
      const body = (await res.json()) as { topic: string; watchToken: string };
      if (res.status === 201) return { topic: body.topic, watchToken: body.watchToken };
      if (attempt >= 5) throw new Error(`POST /v1/qr: ${res.status} ${JSON.stringify(body)}${res.status === 429 ? ' (QR creation is rate limited: raise the limit for the bench)' : ''}`);
      await sleep(res.status === 429 ? 1000 * Number(res.headers.get('retry-after') ?? 1) : 100);
    }
  });
  log(`  created ${count} QR flows in ${Date.now() - started} ms`);
  return flows;
}

export const TARGETS: Target[] = [
  {
    id: 'handoff-sio',
    label: 'Handoff, Socket.IO',
    script: 'bench/servers/handoff.ts',
    transport: 'sio',
    event: 'subscribe',
    env: handoffEnv,
    subs: createFlows,
  },
  {
    id: 'bare-sio',
    label: 'bare Socket.IO',
    script: 'bench/servers/bare-socketio.ts',
    transport: 'sio',
    event: 'join',
    env: (redis): Record<string, string> => (redis ? { REDIS_URL: redis.url, ADAPTER_KEY: uniquePrefix('bench-bare-mem') + 'socket.io' } : {}),
    subs: async (_s, count) => Array.from({ length: count }, (_, i) => ({ room: `qr:room-${i}` })),
  },
  {
    id: 'handoff-ws',
    label: 'Handoff, /v1/ws',
    script: 'bench/servers/handoff.ts',
    transport: 'ws',
    event: 'subscribe',
    env: handoffEnv,
    subs: createFlows,
  },
  {
    id: 'bare-ws',
    label: 'bare ws',
    script: 'bench/servers/bare-ws.ts',
    transport: 'ws',
    event: 'subscribe',
    env: () => ({}),
    subs: async (_s, count) => Array.from({ length: count }, (_, i) => ({ topic: `qr:topic-${i}` })),
  },
];

/**
 * V8 flags for every server of this benchmark: a fixed 1 MiB young generation. V8 otherwise grows
 * and shrinks new space (up to 2 × 16 MiB) with the recent allocation rate and gives the pages
 * back only 20-50 s after the load stops, which swamps the per-connection figure in RSS; with a
 * fixed size RSS settles within seconds of a forced GC. Override with BENCH_MEMORY_V8_FLAGS.
 */
const V8_FLAGS = (process.env.BENCH_MEMORY_V8_FLAGS ?? '--min-semi-space-size=1 --max-semi-space-size=1').split(' ').filter(Boolean);

/**
 * Force GC in the server and sample its VmRSS every second until the last 6 samples lie within
 * 0.5% (or 512 KiB) of each other and V8's heapTotal has not moved over them, at most `maxMs`;
 * returns the mean of those 6 samples.
 */
async function settle(server: ServerChild, maxMs = 60_000): Promise<MemSample> {
  const started = Date.now();
  const samples: Array<{ rss: number; heapTotal: number }> = [];
  let report = await server.mem();
  for (let i = 1; ; i++) {
    await sleep(1000);
    if (i % 2 === 0) report = await server.mem(); // GC again now and then
    samples.push({ rss: rssOf(server.pid), heapTotal: report.heapTotal });
    const last = samples.slice(-6);
    if (last.length < 6) continue;
    const rss = last.map((x) => x.rss);
    const lo = Math.min(...rss);
    const hi = Math.max(...rss);
    const heapStable = Math.max(...last.map((x) => x.heapTotal)) - Math.min(...last.map((x) => x.heapTotal)) <= 512 * 1024;
    const timedOut = Date.now() - started > maxMs;
    if ((hi - lo <= Math.max(lo * 0.005, 512 * 1024) && heapStable) || timedOut) {
      if (timedOut) log(`  RSS did not settle within ${maxMs} ms (spread ${((hi - lo) / 1024).toFixed(0)} KiB, heapTotal stable: ${heapStable})`);
      report = await server.mem();
      return { rss: rss.reduce((a, b) => a + b, 0) / rss.length, heapUsed: report.heapUsed, heapTotal: report.heapTotal, external: report.external, arrayBuffers: report.arrayBuffers };
    }
  }
}

/** A fresh client process that will hold the connections. */
const holderFor = (target: Target) => startHolder(`holder(${target.id})`);

/** Open (and keep open) one more batch of subscribed connections from `holder`. */
const connectBatch = (holder: Holder, target: Target, server: ServerChild, subs: Record<string, unknown>[], concurrency: number) =>
  holderConnect(holder, { transport: target.transport, url: server.url, event: target.event, subs, concurrency }, target.id);

const fmt = (m: MemSample) => `RSS ${(m.rss / 2 ** 20).toFixed(1)} MiB, heap ${(m.heapUsed / 2 ** 20).toFixed(1)}/${(m.heapTotal / 2 ** 20).toFixed(1)} MiB`;

async function measure(target: Target, opts: MemoryOptions, redis: RedisHandle | null): Promise<MemoryResult> {
  log(`memory: ${target.label}`);
  const server = await startServer(target.id, target.script, target.env(redis), { execArgv: V8_FLAGS });
  try {
    const allSubs = await target.subs(server, opts.connections + opts.warmup);
    const warmSubs = allSubs.slice(opts.connections);
    const subs = allSubs.slice(0, opts.connections);
    if (warmSubs.length > 0) {
      const warm = await holderFor(target);
      await connectBatch(warm, target, server, warmSubs, opts.concurrency);
      await closeHolder(warm);
      await sleep(1000);
    }
    const before = await settle(server);
    log(`  0 conns: ${fmt(before)}`);
    const holder = await holderFor(target);
    // Two steps (N/2, then N), so the marginal cost of the second half is known too: it is not
    // flattered by heap pages the baseline had already committed but left free.
    const half = Math.floor(subs.length / 2);
    const first = await connectBatch(holder, target, server, subs.slice(0, half), opts.concurrency);
    await sleep(2000);
    const mid = await settle(server);
    log(`  ${first.ok} conns: ${fmt(mid)}`);
    const second = await connectBatch(holder, target, server, subs.slice(half), opts.concurrency);
    await sleep(2000);
    const after = await settle(server);
    const serverFds = fdCount(server.pid);
    const ok = first.ok + second.ok;
    log(`  ${ok} conns: ${fmt(after)}, server fds ${serverFds}, connect time ${first.ms + second.ms} ms`);
    await closeHolder(holder);
    const n = ok || 1;
    const n2 = second.ok || 1;
    return {
      id: target.id,
      label: target.label,
      connections: ok,
      failed: first.failed + second.failed,
      connectMs: first.ms + second.ms,
      before,
      mid,
      after,
      serverFds,
      rssPerConn: (after.rss - before.rss) / n,
      heapPerConn: (after.heapUsed - before.heapUsed) / n,
      externalPerConn: (after.external - before.external) / n,
      rssMarginal: (after.rss - mid.rss) / n2,
      heapMarginal: (after.heapUsed - mid.heapUsed) / n2,
    };
  } finally {
    await server.stop();
  }
}

export async function runMemory(opts: MemoryOptions): Promise<MemoryResult[]> {
  const redis = opts.redis ? await startRedis() : null;
  try {
    const results: MemoryResult[] = [];
    for (const target of TARGETS) {
      if (opts.only && !opts.only.includes(target.id)) continue;
      results.push(await measure(target, opts, redis));
    }
    return results;
  } finally {
    await redis?.stop();
  }
}
