/**
 * Scale on one machine (issue 15): push latency with 50,000 idle subscribed `/v1/ws` connections
 * next to the same run with 3,000, three Handoff API nodes on one redis-server.
 *
 * - Three real API nodes (`bench/servers/handoff.ts` = server/src/main.ts, ROLE=api, Redis mode,
 *   one REDIS_PREFIX), each limited to 20,000 open files (BENCH_SCALE_NOFILE).
 * - Idle subscribers: one QR flow per connection (created over HTTP beforehand, spread over the
 *   nodes), held by holder processes (bench/clients/holder.ts), at most BENCH_SCALE_PER_HOLDER
 *   (12,500) per holder, each holder also limited to 20,000 open files, each subscribed over /v1/ws
 *   to its own flow on the node that created it. Nothing is ever pushed to them.
 * - Phases, in one run: SMALL (3,000) idle → LARGE (50,000) idle → SMALL again (the extra holders
 *   closed). In each: RSS of every node (after a forced GC, settled), then a measuring window: the
 *   probe (bench/clients/scale-probe.ts, a process of its own) creates RATE × SECONDS fresh flows,
 *   subscribes to each on node i % 3 and scans it on node i + 1, then confirms them on node i + 1
 *   at a steady RATE/s for SECONDS (default 100/s for 30 s, over one 25 s heartbeat cycle); latency
 *   = confirm sent → `confirmed` frame received on the subscriber's node.
 * - Memory per connection = (Σ node RSS with the connections − Σ node RSS with none) / connections
 *   (the nodes are restarted after the idle flows are created, so the baseline holds no garbage of that)
 *   (not for the last phase: V8 and the allocator keep what the large phase took).
 * - Machine state: the share of the CPU used by processes outside the bench in every window
 *   (/proc); a window where it exceeds BENCH_SCALE_BUSY (default 0.25) is measured once more and
 *   both are reported (the figure uses the quieter one).
 *
 * Knobs: BENCH_SCALE_CONNECTIONS (50000; quick 6000), BENCH_SCALE_SMALL (3000; quick 600),
 * BENCH_SCALE_RATE (100), BENCH_SCALE_SECONDS (30; quick 10), BENCH_SCALE_NODES (3),
 * BENCH_SCALE_PER_HOLDER (12500), BENCH_SCALE_NOFILE (20000), BENCH_SCALE_BUSY (0.25); diagnostics:
 * BENCH_SCALE_ENV="K=V K=V" (extra environment for the nodes, e.g. WS_PING_INTERVAL_MS=600000).
 */
import { ANA } from '../test/harness/cluster.js';
import { startRedis } from '../test/harness/redis-server.js';
import { handoffBenchEnv } from './lib/handoff-env.js';
import { sampleSum, scrape } from '../test/harness/prometheus.js';
import { closeHolder, holderConnect, startHolder, type Holder } from './lib/holders.js';
import { httpRequest, keepAliveAgent } from './lib/http.js';
import { cpuSample, fdCount, foreignCpu, rssOf, sleep, spawnNode, startServer, treeCpu, type NodeChild, type ServerChild } from './lib/proc.js';
import { log, mapLimit, summarize, type Summary } from './lib/util.js';

export interface ScaleOptions {
  connections: number;
  small: number;
  rate: number;
  seconds: number;
  nodes: number;
  perHolder: number;
  nofile: number;
  busy: number;
}

export interface ScaleWindow {
  foreignCpu: number;
  /** CPU of each node over the window, share of one core. */
  nodeCpu: number[];
  push: Summary;
  http: Summary;
  sent: number;
  lost: number;
  errors: string[];
  probeLoopP99Ms: number;
  prepareMs: number;
  /** CPU over the window, share of one core: redis-server, all holders, the probe. */
  otherCpu: { redis: number; holders: number; probe: number };
  /** Per node over the window (from its /metrics): pushes sent, resyncs, Redis errors, GC seconds; at its end: event-loop lag p99 and max, s. */
  nodeStats: Array<{ pushes: number; resyncs: number; redisErrors: number; gcS: number; lagP99S: number; lagMaxS: number }>;
}

export interface ScalePhase {
  label: string;
  /** Idle subscribed connections open (held by the holders). */
  idle: number;
  failed: number;
  /** Σ node RSS after a forced GC, bytes. */
  rss: number;
  rssPerConn: number;
  fds: number[];
  windows: ScaleWindow[];
  /** The window the figures use (the quietest). */
  chosen: ScaleWindow;
}

export interface ScaleResult {
  options: ScaleOptions;
  createMs: number;
  rss0: number;
  phases: ScalePhase[];
  loadBefore: string;
  loadAfter: string;
}

async function createFlows(urls: string[], count: number): Promise<Array<{ node: number; topic: string; watchToken: string }>> {
  const agent = keepAliveAgent(16);
  let done = 0;
  const flows = await mapLimit(Array.from({ length: count }), 48, async (_, i) => {
    const node = i % urls.length;
    for (let attempt = 1; ; attempt++) {
      const res = await httpRequest(agent, urls[node] + '/v1/qr', { method: 'POST', headers: { 'user-agent': 'Bench/1.0' }, timeoutMs: 30_000 }).catch((err) => ({ status: 0, body: String(err) }));
      if (res.status === 201) {
        const body = JSON.parse(res.body) as { topic: string; watchToken: string };
        if (++done % 10_000 === 0) log(`  ${done}/${count} flows created`);
        return { node, topic: body.topic, watchToken: body.watchToken };
      }
      if (attempt >= 5) throw new Error(`POST /v1/qr: ${res.status} ${res.body.slice(0, 200)}`);
      await sleep(200);
    }
  });
  agent.destroy();
  return flows;
}

export async function runScale(opts: ScaleOptions, load: () => string): Promise<ScaleResult> {
  const loadBefore = load();
  const redis = await startRedis();
  const servers: ServerChild[] = [];
  const holders: Holder[] = [];
  let probe: NodeChild | undefined;
  try {
    const env = handoffBenchEnv('bench-scale', {
      REDIS_URL: redis.url,
      ROLE: 'api',
      // Diagnostics: extra node environment, e.g. BENCH_SCALE_ENV="WS_PING_INTERVAL_MS=600000".
      ...Object.fromEntries((process.env.BENCH_SCALE_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    });
    const startNodes = async () => {
      for (let i = 0; i < opts.nodes; i++) servers.push(await startServer(`scale-node-${i}`, 'bench/servers/handoff.ts', env, { nofile: opts.nofile }));
    };
    await startNodes();
    // The idle flows first (they live in Redis); then fresh node processes, so the creation's
    // garbage (V8 keeps heap pages for a long while) is not in the nodes' baseline RSS.
    const t = Date.now();
    const flows = await createFlows(servers.map((s) => s.url), opts.connections);
    const createMs = Date.now() - t;
    log(`  ${opts.connections} idle flows created in ${(createMs / 1000).toFixed(0)} s; restarting the nodes`);
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    await startNodes();
    const urls = servers.map((s) => s.url);
    log(`scale: ${opts.nodes} nodes up (${urls.join(' ')}), redis ${redis.url}, each limited to ${opts.nofile} open files`);
    const login = await httpRequest(keepAliveAgent(1), urls[0] + '/v1/sessions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: ANA.email, password: ANA.password }),
    });
    if (login.status !== 200) throw new Error(`login: ${login.status} ${login.body}`);
    const token = JSON.parse(login.body).token as string;

    probe = spawnNode('scale-probe', 'bench/clients/scale-probe.ts', {}, [], { nofile: opts.nofile });
    await probe.next('ready', 30_000);
    const p = probe;
    const probeCall = async <T>(msg: object, type: string, timeoutMs: number): Promise<T> => {
      const failed = p.next<{ error: string }>('failed', timeoutMs + 1000).then((m) => Promise.reject(new Error(`probe: ${m.error}`)));
      failed.catch(() => {});
      return Promise.race([p.request<T>(msg, type, timeoutMs), failed]);
    };

    // A short warm-up of the measured path (JIT, pools), not kept.
    await probeCall({ type: 'prepare', nodes: urls, token, flows: Math.min(300, opts.rate * 3) }, 'prepared', 120_000);
    await probeCall({ type: 'run', rate: opts.rate, seconds: 3 }, 'result', 60_000);

    /** Σ node RSS: a forced GC in every node (twice, 2 s apart), then the mean of three VmRSS samples 1 s apart. */
    const memAll = async () => {
      await Promise.all(servers.map((s) => s.mem()));
      await sleep(2000);
      await Promise.all(servers.map((s) => s.mem()));
      let sum = 0;
      for (let i = 0; i < 3; i++) {
        await sleep(1000);
        sum += servers.reduce((a, s) => a + rssOf(s.pid), 0);
      }
      return sum / 3;
    };
    const rss0 = await memAll();
    log(`  RSS of the nodes with no idle connection: ${(rss0 / 2 ** 20).toFixed(0)} MiB`);

    let open = 0;
    let failed = 0;
    /** Open idle connections for flows[from, to) in holders of at most perHolder each. */
    const openIdle = async (from: number, to: number) => {
      const batches: Array<typeof flows> = [];
      for (let i = from; i < to; i += opts.perHolder) batches.push(flows.slice(i, Math.min(to, i + opts.perHolder)));
      const started = Date.now();
      await Promise.all(
        batches.map(async (batch) => {
          const holder = await startHolder(`scale-holder-${holders.length}`, { nofile: opts.nofile });
          holders.push(holder);
          for (let node = 0; node < opts.nodes; node++) {
            const subs = batch.filter((f) => f.node === node).map((f) => ({ topic: f.topic, watchToken: f.watchToken }));
            const r = await holderConnect(holder, { transport: 'ws', url: urls[node], subs, concurrency: 50 }, `${holder.name} → node ${node}`);
            open += r.ok;
            failed += r.failed;
          }
        }),
      );
      log(`  ${open} idle connections open (${failed} failed) after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    };

    const stats = () =>
      Promise.all(
        urls.map(async (u) => {
          const m = await scrape(u);
          return {
            pushes: sampleSum(m, 'handoff_pushes_total'),
            resyncs: sampleSum(m, 'handoff_resyncs_total'),
            redisErrors: sampleSum(m, 'handoff_redis_errors_total'),
            gcS: sampleSum(m, 'nodejs_gc_duration_seconds_sum'),
            lagP99S: sampleSum(m, 'nodejs_eventloop_lag_p99_seconds'),
            lagMaxS: sampleSum(m, 'nodejs_eventloop_lag_max_seconds'),
          };
        }),
      );
    const others = () => ({ redis: treeCpu(redis.pid), holders: holders.reduce((a, h) => a + treeCpu(h.pid), 0), probe: treeCpu(p.pid) });

    const measure = async (): Promise<ScaleWindow> => {
      const prep = await probeCall<{ ms: number }>({ type: 'prepare', nodes: urls, token, flows: Math.round(opts.rate * opts.seconds) }, 'prepared', 300_000);
      await sleep(1000);
      const stats0 = await stats();
      const cpu0 = cpuSample();
      const node0 = servers.map((s) => treeCpu(s.pid));
      const other0 = others();
      const w0 = performance.now();
      const r = await probeCall<{ sent: number; latencies: number[]; httpMs: number[]; lost: number; errors: string[]; loopP99Ms: number }>(
        { type: 'run', rate: opts.rate, seconds: opts.seconds },
        'result',
        (opts.seconds + 60) * 1000,
      );
      const wall = (performance.now() - w0) / 1000;
      const other1 = others();
      const stats1 = await stats();
      const win: ScaleWindow = {
        otherCpu: { redis: (other1.redis - other0.redis) / wall, holders: (other1.holders - other0.holders) / wall, probe: (other1.probe - other0.probe) / wall },
        nodeStats: stats1.map((x, i) => ({
          pushes: x.pushes - stats0[i].pushes,
          resyncs: x.resyncs - stats0[i].resyncs,
          redisErrors: x.redisErrors - stats0[i].redisErrors,
          gcS: x.gcS - stats0[i].gcS,
          lagP99S: x.lagP99S,
          lagMaxS: x.lagMaxS,
        })),
        foreignCpu: foreignCpu(cpu0, cpuSample()),
        nodeCpu: servers.map((s, i) => (treeCpu(s.pid) - node0[i]) / wall),
        push: summarize(r.latencies),
        http: summarize(r.httpMs),
        sent: r.sent,
        lost: r.lost,
        errors: r.errors,
        probeLoopP99Ms: r.loopP99Ms,
        prepareMs: prep.ms,
      };
      log(
        `  window: ${win.sent} confirms, push p50/p95/p99/max ${win.push.p50.toFixed(1)}/${win.push.p95.toFixed(1)}/${win.push.p99.toFixed(1)}/${win.push.max.toFixed(1)} ms, ` +
          `lost ${win.lost}, errors ${win.errors.length}, other processes ${(win.foreignCpu * 100).toFixed(0)}% CPU, nodes ${win.nodeCpu.map((c) => (c * 100).toFixed(0) + '%').join(' ')}, ` +
          `redis ${(win.otherCpu.redis * 100).toFixed(0)}%, holders ${(win.otherCpu.holders * 100).toFixed(0)}%, probe ${(win.otherCpu.probe * 100).toFixed(0)}%, prepare ${(win.prepareMs / 1000).toFixed(0)} s, ` +
          `per node pushes/resyncs/redis errors/GC s/lag p99,max ms: ${win.nodeStats.map((x) => `${x.pushes}/${x.resyncs}/${x.redisErrors}/${x.gcS.toFixed(2)}/${(x.lagP99S * 1000).toFixed(0)},${(x.lagMaxS * 1000).toFixed(0)}`).join(' · ')}`,
      );
      return win;
    };

    const phases: ScalePhase[] = [];
    const phase = async (label: string) => {
      await sleep(2000);
      const rss = await memAll();
      const fds = servers.map((s) => fdCount(s.pid));
      log(`  ${label}: ${open} idle, RSS ${(rss / 2 ** 20).toFixed(0)} MiB, node fds ${fds.join(' ')}`);
      const windows = [await measure()];
      if (windows[0].foreignCpu > opts.busy) {
        log(`  the machine was busy (${(windows[0].foreignCpu * 100).toFixed(0)}% by other processes): measuring once more`);
        windows.push(await measure());
      }
      const chosen = windows.reduce((a, b) => (b.foreignCpu < a.foreignCpu ? b : a));
      phases.push({ label, idle: open, failed, rss, rssPerConn: open > 0 ? (rss - rss0) / open : NaN, fds, windows, chosen });
    };

    await openIdle(0, opts.small);
    const smallHolders = holders.length;
    await phase(`${opts.small} idle`);
    await openIdle(opts.small, opts.connections);
    await phase(`${opts.connections} idle`);
    for (const h of holders.splice(smallHolders)) await closeHolder(h);
    open = phases[0].idle;
    failed = phases[0].failed;
    await sleep(3000);
    await phase(`${opts.small} idle again`);
    phases[2].rssPerConn = NaN;
    return { options: opts, createMs, rss0, phases, loadBefore, loadAfter: load() };
  } finally {
    await Promise.all(holders.map((h) => closeHolder(h)));
    await probe?.stop(2000);
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
  }
}
