/**
 * `npm run bench [-- latency|memory|login|identity|approval|scale|waiting|latency-cluster ...]` — Handoff next to its baselines, side by side.
 *
 *   npm run bench                   # all eight benchmarks, full size (see docs/benchmarks.md)
 *   npm run bench -- latency        # push latency vs bare Socket.IO + Redis adapter
 *   npm run bench -- memory         # memory per idle connection vs bare Socket.IO / ws
 *   npm run bench -- login          # async login throughput vs raw bcrypt (bench/login.ts, own env knobs)
 *   npm run bench -- identity       # QR scan/confirm: app tokens (RS256/ES256, cached JWKS) vs built-in JWTs
 *   npm run bench -- approval       # approval request A → phone on B vs QR `scanned` push A → browser on B
 *   npm run bench -- scale          # 50,000 idle /v1/ws subscribers on three nodes vs 3,000: push p99, memory/conn (bench/scale.ts)
 *   npm run bench -- waiting        # CPU per waiting client-hour: /v1/ws, Socket.IO, long-poll vs 1 Hz polling (bench/waiting.ts)
 *   npm run bench -- latency-cluster  # push latency across nodes on a Redis Cluster vs one redis-server (bench/latency.ts)
 *   BENCH_QUICK=1 npm run bench     # smoke run with small numbers (~3 min)
 *
 * Overrides (env): BENCH_FLOWS, BENCH_ROUNDS, BENCH_WAVE, BENCH_GAP_MS, BENCH_SENDERS,
 * BENCH_QUIET_CPU (latency); BENCH_CONNECTIONS, BENCH_MEMORY_REDIS=1,
 * BENCH_MEMORY_ONLY=handoff-sio,bare-sio,..., BENCH_MEMORY_V8_FLAGS (memory); BENCH_IDENTITY_ROUNDS,
 * BENCH_IDENTITY_WARMUP, BENCH_IDENTITY_USERS, BENCH_IDENTITY_CONCURRENCY, BENCH_IDENTITY_REDIS=0,
 * BENCH_IDENTITY_ES256=0, BENCH_IDENTITY_CPU_FLOWS (identity, see bench/identity.ts); BENCH_APPROVAL_ROUNDS,
 * BENCH_APPROVAL_WARMUP (approval, see bench/approval.ts); BENCH_SCALE_* (scale, see bench/scale.ts);
 * BENCH_WAITING_* (waiting, see bench/waiting.ts); BENCH_CLUSTER_PAIRS (latency-cluster: runs of each
 * variant — one redis-server, Cluster, Cluster with REDIS_WAIT_REPLICAS=0 unless BENCH_CLUSTER_NOWAIT=0,
 * three masters without replicas unless BENCH_CLUSTER_NOREPLICA=0 — alternating, default 2; each run takes BENCH_FLOWS, BENCH_CLUSTER_ROUNDS (default 2),
 * BENCH_WAVE, BENCH_GAP_MS, BENCH_SENDERS like latency); BENCH_TIMEOUT_S
 * (whole-run watchdog); BENCH_WAIT_QUIET=<s> (first wait for a quiet machine); diagnostics:
 * BENCH_SERVER_NODE_FLAGS (extra node flags for every server), BENCH_LOG_DIR (keep server output).
 * Progress goes to stderr, the result tables to stdout and to bench/results/latest.{md,json}.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { approvalMarkdown, runApproval, type ApprovalResult } from './approval.js';
import { identityMarkdown, runIdentity, type IdentityResult } from './identity.js';
import { CONFIRM, runLatency, SCAN, type LatencyResult } from './latency.js';
import { runMemory, type MemoryResult } from './memory.js';
import { runScale, type ScaleResult } from './scale.js';
import { runWaiting, type WaitingResult } from './waiting.js';
import { cpuSample, foreignCpu, killAllChildren, ROOT, sleep } from './lib/proc.js';
import { kib, loadAverage, log, mib, ms, ratio, summarize, table } from './lib/util.js';

const quick = ['1', 'true', 'yes'].includes((process.env.BENCH_QUICK ?? '').toLowerCase());
const num = (name: string, def: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number`);
  return n;
};

const ALL = ['latency', 'memory', 'login', 'identity', 'approval', 'scale', 'waiting', 'latency-cluster'] as const;
const selected = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const s of selected) if (!(ALL as readonly string[]).includes(s)) {
  console.error(`unknown benchmark "${s}"; choose from: ${ALL.join(', ')}`);
  process.exit(64);
}
const run = selected.length ? selected : [...ALL];

// Watchdog: the bench always ends by itself.
// The first five fit in 1,800 s (420 quick); the three of issue 15 add their own budgets.
const extraS: Record<string, [number, number]> = { scale: [300, 1500], waiting: [240, 900], 'latency-cluster': [300, 1200] };
const timeoutS = num('BENCH_TIMEOUT_S', (quick ? 420 : 1800) + run.reduce((a, b) => a + (extraS[b]?.[quick ? 0 : 1] ?? 0), 0));
const watchdog = setTimeout(() => {
  log(`watchdog: still running after ${timeoutS} s; killing children and exiting`);
  killAllChildren();
  process.exit(2);
}, timeoutS * 1000);
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAllChildren();
    process.exit(130);
  });
}

/** The code measured: HEAD and whether server/protocol have uncommitted changes (read-only git). */
function codeVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'server', 'protocol'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${head} + uncommitted changes in server/protocol` : head;
  } catch {
    return 'unknown';
  }
}

const started = Date.now();
const code = codeVersion();
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}`;
log(`${quick ? 'QUICK' : 'full'} run: ${run.join(', ')} on ${machine}`);

/**
 * The machine may be shared (other test runs using the 2 cores): with BENCH_WAIT_QUIET=<s>, wait
 * up to that long until processes outside the benchmark have used less than BENCH_QUIET_CPU % of
 * the CPU for 15 s in a row (three 5 s windows).
 */
async function waitQuiet(): Promise<void> {
  const maxS = num('BENCH_WAIT_QUIET', 0);
  if (maxS <= 0) return;
  const limit = num('BENCH_QUIET_CPU', 10) / 100;
  const deadline = Date.now() + maxS * 1000;
  let quietWindows = 0;
  let last = 0;
  while (quietWindows < 3) {
    if (Date.now() > deadline) {
      log(`machine still busy after ${maxS} s (other processes: ${(last * 100).toFixed(0)}% CPU); going ahead`);
      return;
    }
    const a = cpuSample();
    await sleep(5000);
    last = foreignCpu(a, cpuSample());
    quietWindows = last < limit ? quietWindows + 1 : 0;
  }
  log(`machine quiet (other processes < ${(limit * 100).toFixed(0)}% CPU for 15 s)`);
}
const loads: Record<string, { before: string; after: string }> = {};

let latency: LatencyResult | undefined;
let memory: MemoryResult[] | undefined;
let identity: IdentityResult | undefined;
let approval: ApprovalResult | undefined;
let scale: ScaleResult | undefined;
let waiting: WaitingResult | undefined;
let latencyCluster: Array<{ topology: string; run: LatencyResult }> | undefined;
const out: string[] = [];

/** Print a section and keep it for bench/results/latest.md. */
function report(text: string): void {
  process.stdout.write(text + '\n');
  out.push(text);
}

if (run.includes('latency')) {
  await waitQuiet();
  const t = Date.now();
  const loadBefore = loadAverage();
  latency = await runLatency({
    flows: num('BENCH_FLOWS', quick ? 100 : 1000),
    warmup: quick ? 20 : 100,
    wave: num('BENCH_WAVE', 1),
    gapMs: num('BENCH_GAP_MS', 5),
    senders: num('BENCH_SENDERS', 10),
    rounds: num('BENCH_ROUNDS', quick ? 1 : 5),
    quietCpu: num('BENCH_QUIET_CPU', 10) / 100,
  });
  loads.latency = { before: loadBefore, after: loadAverage() };
  const o = latency.options;
  const L = latency;
  const row = (p: (typeof L.phases)[number], label: string) => [
    label + (p.lostHandoff || p.lostBare ? ` (lost: ${p.lostHandoff}/${p.lostBare})` : ''),
    String(p.handoff.n),
    ms(p.handoff.p50),
    ms(p.handoff.p99),
    ms(p.handoff.max),
    ms(p.bare.p50),
    ms(p.bare.p99),
    ms(p.bare.max),
    ratio(p.handoff.p50, p.bare.p50),
    ratio(p.handoff.p99, p.bare.p99),
    p.handoff.p99 <= 1.5 * p.bare.p99 ? 'met' : 'MISSED',
  ];
  const short = (name: string) => name.split(' ')[0];
  const rows: string[][] = [];
  for (let i = 0; i < L.phases.length; i++) {
    rows.push(row(L.phases[i], `${short(L.phases[i].phase)}, all ${o.rounds} rounds`));
    if (L.quiet[i] && L.quietRounds < o.rounds) rows.push(row(L.quiet[i], `${short(L.quiet[i].phase)}, ${L.quietRounds} quiet round(s)`));
  }
  out.push(
    `### Push latency, node B → node A over Redis (${o.flows} concurrent flows, waves of ${o.wave}, ${o.gapMs} ms gap)`,
    '',
    table(['path', 'samples', 'Handoff p50', 'p99', 'max', 'bare Socket.IO p50', 'p99', 'max', 'ratio p50', 'ratio p99', 'target p99 ≤ 1.5x'], rows),
    '',
    `Milliseconds, \`qr:confirm\` / \`qr:scan\` (Handoff) or \`trigger\` (bare) emitted on node B → \`state\` received from node A. ` +
      `A round is quiet when processes outside the benchmark used < ${(o.quietCpu * 100).toFixed(0)}% of the machine's CPU. Per round ` +
      `(other processes' CPU share; confirm p99 Handoff/bare = ratio): ` +
      L.perRound
        .map((r) => `${r.round}: ${(r.foreignCpu * 100).toFixed(0)}%; ${ms(r.phases[0].handoff.p99)}/${ms(r.phases[0].bare.p99)} = ${ratio(r.phases[0].handoff.p99, r.phases[0].bare.p99)}`)
        .join(' · ') +
      '.',
    '',
    `Ack round trip on node B (emit → ack; for Handoff the transition is committed in Redis and published by then), p50/p99 ms, all rounds: ` +
      L.phases.map((p) => `${short(p.phase)} Handoff ${ms(p.handoffAck.p50)}/${ms(p.handoffAck.p99)}, bare ${ms(p.bareAck.p50)}/${ms(p.bareAck.p99)}`).join('; ') +
      '.',
    '',
    `Handoff node A held ${L.handoffAFds} fds. Benchmark took ${((Date.now() - t) / 1000).toFixed(0)} s; ` +
      `load average (1/5/15 min) before ${loads.latency.before}, after ${loads.latency.after}.`,
    '',
  );
  process.stdout.write(out.join('\n') + '\n');
}

if (run.includes('memory')) {
  await waitQuiet();
  const t = Date.now();
  const loadBefore = loadAverage();
  const mOut: string[] = [];
  const connections = num('BENCH_CONNECTIONS', quick ? 500 : 10_000);
  const redisMode = ['1', 'true', 'yes'].includes((process.env.BENCH_MEMORY_REDIS ?? '').toLowerCase());
  memory = await runMemory({
    connections,
    warmup: quick ? 50 : 300,
    concurrency: 100,
    redis: redisMode,
    only: process.env.BENCH_MEMORY_ONLY ? process.env.BENCH_MEMORY_ONLY.split(',').map((s) => s.trim()) : undefined,
  });
  loads.memory = { before: loadBefore, after: loadAverage() };
  const byId = new Map(memory.map((r) => [r.id, r]));
  const cmp = (id: string) => {
    const r = byId.get(id)!;
    const base = byId.get(id.replace('handoff', 'bare'));
    if (!id.startsWith('handoff') || !base) return ['', '', '', ''];
    const total = r.rssPerConn / base.rssPerConn;
    const marginal = r.rssMarginal / base.rssMarginal;
    const ok = (x: number) => Number.isFinite(x) && x > 0 && x <= 1.3;
    const verdict = ok(total) && ok(marginal) ? 'met' : !ok(total) && !ok(marginal) ? 'MISSED' : `mixed (0→N ${ok(total) ? 'met' : 'missed'}, marginal ${ok(marginal) ? 'met' : 'missed'})`;
    return [ratio(r.rssPerConn, base.rssPerConn), ratio(r.rssMarginal, base.rssMarginal), ratio(r.heapPerConn, base.heapPerConn), verdict];
  };
  if (quick) mOut.push('> Quick run: with this few connections the deltas are mostly allocator noise; only the full run (10,000) means anything.', '');
  mOut.push(
    `### Server memory per idle subscribed connection (${connections} connections per server, ${redisMode ? 'Handoff in Redis mode' : 'Handoff in embedded mode'})`,
    '',
    table(
      ['server', 'conns', 'RSS MiB at 0 / N/2 / N', 'RSS KiB/conn 0→N', 'RSS KiB/conn N/2→N', 'heap KiB/conn 0→N', 'RSS ratio 0→N', 'RSS ratio N/2→N', 'heap ratio', 'target RSS ≤ 1.3x'],
      memory.map((r) => [
        r.label + (r.failed ? ` (${r.failed} failed)` : ''),
        String(r.connections),
        `${mib(r.before.rss)} / ${mib(r.mid.rss)} / ${mib(r.after.rss)}`,
        kib(r.rssPerConn),
        kib(r.rssMarginal),
        kib(r.heapPerConn),
        ...cmp(r.id),
      ]),
    ),
    '',
    `0→N = (RSS with N − RSS with 0) / N; N/2→N = the second half's marginal cost; every sample after a forced GC in the server, RSS settled. Heap = heapUsed. Benchmark took ${((Date.now() - t) / 1000).toFixed(0)} s; ` +
      `load average before ${loads.memory.before}, after ${loads.memory.after}.`,
    '',
  );
  report(mOut.join('\n'));
}

if (run.includes('login')) {
  await waitQuiet();
  // Its own process (it reads BENCH_QUICK and its own knobs); its table joins this run's results.
  const result = spawnSync(process.execPath, [...process.execArgv, 'bench/login.ts'], {
    cwd: ROOT,
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const text = (result.stdout ?? '').trim();
  process.stdout.write(text + '\n');
  out.push('### Async login throughput, event-loop delay and reads during a login flood', '', text || `bench/login.ts failed (exit ${result.status})`, '');
}

if (run.includes('identity')) {
  await waitQuiet();
  const t = Date.now();
  const loadBefore = loadAverage();
  const off = (name: string) => ['0', 'false', 'no'].includes((process.env[name] ?? '').toLowerCase());
  identity = await runIdentity({
    rounds: num('BENCH_IDENTITY_ROUNDS', quick ? 300 : 3000),
    warmup: num('BENCH_IDENTITY_WARMUP', quick ? 50 : 300),
    users: Math.max(1, num('BENCH_IDENTITY_USERS', quick ? 20 : 100)),
    concurrency: Math.max(1, num('BENCH_IDENTITY_CONCURRENCY', 1)),
    redis: !off('BENCH_IDENTITY_REDIS'),
    es256: !off('BENCH_IDENTITY_ES256'),
    cpuFlows: num('BENCH_IDENTITY_CPU_FLOWS', quick ? 200 : 1000),
    target: 1.1,
  });
  loads.identity = { before: loadBefore, after: loadAverage() };
  const o = identity.options;
  const text = [
    `### QR scan/confirm over HTTP: app tokens (cached JWKS) vs built-in session JWTs (ACCOUNTS=both; ${o.users} users per kind, ${o.rounds} rounds after ${o.warmup} warm-up, concurrency ${o.concurrency})`,
    '',
    identityMarkdown(identity, (Date.now() - t) / 1000),
  ].join('\n');
  report(text);
}

if (run.includes('approval')) {
  await waitQuiet();
  const t = Date.now();
  approval = await runApproval({
    rounds: num('BENCH_APPROVAL_ROUNDS', quick ? 300 : 2000),
    warmup: num('BENCH_APPROVAL_WARMUP', quick ? 50 : 200),
    target: 1.2,
  });
  loads.approval = { before: approval.loadBefore, after: approval.loadAfter };
  const text = [
    `### Approval request pushed across nodes vs the QR \`scanned\` push (two nodes, one redis-server; ${approval.options.rounds} rounds after ${approval.options.warmup} warm-up, the two kinds alternating)`,
    '',
    approvalMarkdown(approval, (Date.now() - t) / 1000),
  ].join('\n');
  report(text);
}

if (run.includes('scale')) {
  await waitQuiet();
  const t = Date.now();
  scale = await runScale(
    {
      connections: num('BENCH_SCALE_CONNECTIONS', quick ? 6000 : 50_000),
      small: num('BENCH_SCALE_SMALL', quick ? 600 : 3000),
      rate: num('BENCH_SCALE_RATE', 100),
      seconds: num('BENCH_SCALE_SECONDS', quick ? 10 : 30),
      nodes: num('BENCH_SCALE_NODES', 3),
      perHolder: num('BENCH_SCALE_PER_HOLDER', 12_500),
      nofile: num('BENCH_SCALE_NOFILE', 20_000),
      busy: num('BENCH_SCALE_BUSY', 0.25),
    },
    loadAverage,
  );
  loads.scale = { before: scale.loadBefore, after: scale.loadAfter };
  const S = scale;
  const o = S.options;
  const ref = S.phases[0].chosen.push.p99;
  const refAgain = S.phases[2]?.chosen.push.p99 ?? NaN;
  const pct = (x: number) => (x * 100).toFixed(0);
  const text = [
    `### Scale: idle subscribed \`/v1/ws\` connections on ${o.nodes} nodes, confirms at ${o.rate}/s for ${o.seconds} s (one redis-server)`,
    '',
    table(
      ['idle connections', 'confirms', 'push p50', 'p95', 'p99', 'max', 'lost', 'HTTP answer p50/p99', 'p99 vs first ' + o.small, 'Σ node RSS MiB', 'RSS KiB/conn', 'node fds', 'node CPU %', 'other processes CPU %'],
      S.phases.map((p) => {
        const w = p.chosen;
        return [
          p.label + (p.failed ? ` (${p.failed} failed)` : ''),
          String(w.sent),
          ms(w.push.p50),
          ms(w.push.p95),
          ms(w.push.p99),
          ms(w.push.max),
          String(w.lost) + (w.errors.length ? ` (${w.errors.length} errors)` : ''),
          `${ms(w.http.p50)}/${ms(w.http.p99)}`,
          ratio(w.push.p99, ref),
          mib(p.rss),
          kib(p.rssPerConn),
          p.fds.join(' / '),
          w.nodeCpu.map(pct).join(' / '),
          p.windows.length > 1 ? p.windows.map((x) => `${pct(x.foreignCpu)}${x === w ? ' (shown)' : ` (p99 ${ms(x.push.p99)})`}`).join(', ') : pct(w.foreignCpu),
        ];
      }),
    ),
    '',
    `Milliseconds; push = \`POST /v1/qr/{id}/confirm\` sent on node i+1 → \`confirmed\` frame on node i, at the measuring client (its own process; event-loop p99 ` +
      S.phases.map((p) => ms(p.chosen.probeLoopP99Ms)).join(' / ') +
      ` ms). RSS after a forced GC; KiB/conn = (Σ RSS − Σ RSS with no idle connection, ${mib(S.rss0)} MiB) / idle connections. ` +
      `**p99(${o.connections})/p99(${o.small}) = ${ratio(S.phases[1]?.chosen.push.p99 ?? NaN, ref)}** (vs the ${o.small} measured after: ${ratio(S.phases[1]?.chosen.push.p99 ?? NaN, refAgain)}); target ≤ 1.2x: ` +
      ((S.phases[1]?.chosen.push.p99 ?? Infinity) <= 1.2 * ref ? 'met' : 'MISSED') +
      `. Per window (CPU % of a core: redis-server, holders, probe; per node: pushes, resyncs, GC s, event-loop lag p99/max ms from its /metrics): ` +
      S.phases
        .map(
          (p) =>
            `${p.label}: ` +
            p.windows
              .map(
                (w) =>
                  `${(w.otherCpu.redis * 100).toFixed(0)}/${(w.otherCpu.holders * 100).toFixed(0)}/${(w.otherCpu.probe * 100).toFixed(0)}; ` +
                  w.nodeStats.map((x) => `${x.pushes}, ${x.resyncs}, ${x.gcS.toFixed(2)}, ${(x.lagP99S * 1000).toFixed(0)}/${(x.lagMaxS * 1000).toFixed(0)}`).join(' | '),
              )
              .join(' then '),
        )
        .join(' · ') +
      `. ${o.connections} flows created in ${(S.createMs / 1000).toFixed(0)} s. Took ${((Date.now() - t) / 1000).toFixed(0)} s; load average before ${S.loadBefore}, after ${S.loadAfter}.`,
    '',
  ].join('\n');
  report(text);
}

if (run.includes('waiting')) {
  await waitQuiet();
  const t = Date.now();
  const loadBefore = loadAverage();
  waiting = await runWaiting({
    clients: num('BENCH_WAITING_CLIENTS', quick ? 1000 : 10_000),
    pollers: num('BENCH_WAITING_POLLERS', quick ? 200 : 2000),
    seconds: num('BENCH_WAITING_SECONDS', quick ? 15 : 60),
    nofile: num('BENCH_WAITING_NOFILE', 20_000),
  });
  loads.waiting = { before: loadBefore, after: loadAverage() };
  const W = waiting;
  const poll = W.windows.find((w) => w.id === 'poll')?.perClientHour ?? NaN;
  const text = [
    `### Cost of a waiting client: one Redis-mode node, ${W.options.seconds} s windows, net of the idle node`,
    '',
    table(
      ['clients', 'count', 'node CPU % of a core', 'idle before / after', 'net CPU-s per client-hour', 'cheaper than 1 Hz polling', 'target ≥ 40x', 'HTTP requests (errors)', 'other processes CPU %'],
      W.windows
        .filter((w) => w.id !== 'idle')
        .map((w) => {
          const below = !(w.perClientHour > 0);
          return [
            w.label + (w.failed ? ` (${w.failed} failed)` : ''),
            String(w.clients),
            (w.cpuPerS * 100).toFixed(2),
            w.idleAround ? w.idleAround.map((x) => (x * 100).toFixed(2)).join(' / ') : '',
            w.perClientHour.toFixed(4) + (below ? ' (below the idle noise)' : ''),
            w.id === 'poll' ? '' : below ? 'n/a' : (poll / w.perClientHour).toFixed(1) + 'x',
            w.id === 'ws' || w.id === 'sio' ? (below ? 'not measurable' : poll / w.perClientHour >= 40 ? 'met' : 'MISSED') : '',
            w.requests !== undefined ? `${w.requests} (${w.errors})` : '',
            (w.foreignCpu * 100).toFixed(0),
          ];
        }),
    ),
    '',
    `Node CPU in % of one core; net = (node CPU/s in the window − the mean of the idle windows just before and after it) × 3600 / clients. ` +
      `Idle windows: ${W.windows
        .filter((w) => w.id === 'idle')
        .map((w) => `${(w.cpuPerS * 100).toFixed(2)}% (other processes ${(w.foreignCpu * 100).toFixed(0)}%)`)
        .join(', ')}. ` +
      `Took ${((Date.now() - t) / 1000).toFixed(0)} s; load average before ${loads.waiting.before}, after ${loads.waiting.after}.`,
    '',
  ].join('\n');
  report(text);
}

if (run.includes('latency-cluster')) {
  await waitQuiet();
  const t = Date.now();
  const loadBefore = loadAverage();
  const pairs = Math.max(1, num('BENCH_CLUSTER_PAIRS', quick ? 1 : 2));
  // Cluster nodes WAIT for a replica after a final transition (REDIS_WAIT_REPLICAS defaults to 1
  // there, 0 on one redis-server): the third variant, without it, shows what that WAIT costs; the
  // fourth, three masters without replicas, what the replicas' own work costs on this one machine.
  type Variant = { id: string; label: string; topology: 'single' | 'cluster'; clusterReplicas?: 0 | 1; env: Record<string, string> };
  const variants: Variant[] = [
    { id: 'single', label: 'one redis-server', topology: 'single', env: {} },
    { id: 'cluster', label: 'Redis Cluster (3+3)', topology: 'cluster', env: {} },
    ...(process.env.BENCH_CLUSTER_NOWAIT === '0' ? [] : [{ id: 'cluster-nowait', label: 'Redis Cluster, REDIS_WAIT_REPLICAS=0', topology: 'cluster', env: { REDIS_WAIT_REPLICAS: '0' } } satisfies Variant]),
    ...(process.env.BENCH_CLUSTER_NOREPLICA === '0'
      ? []
      : [{ id: 'cluster-noreplica', label: 'Redis Cluster, 3 masters without replicas (REDIS_WAIT_REPLICAS=0)', topology: 'cluster', clusterReplicas: 0, env: { REDIS_WAIT_REPLICAS: '0' } } satisfies Variant]),
  ];
  latencyCluster = [];
  for (let i = 0; i < pairs; i++) {
    // Alternate the order, so no variant always runs on a warmer (or busier) machine.
    for (const v of i % 2 === 0 ? variants : [...variants].reverse()) {
      log(`latency-cluster: pass ${i + 1}/${pairs}, ${v.id}`);
      const r = await runLatency({
        flows: num('BENCH_FLOWS', quick ? 100 : 1000),
        warmup: quick ? 20 : 100,
        wave: num('BENCH_WAVE', 1),
        gapMs: num('BENCH_GAP_MS', 5),
        senders: num('BENCH_SENDERS', 10),
        rounds: num('BENCH_CLUSTER_ROUNDS', quick ? 1 : 2),
        quietCpu: num('BENCH_QUIET_CPU', 10) / 100,
        topology: v.topology,
        clusterReplicas: v.clusterReplicas,
        handoffEnv: v.env,
      });
      latencyCluster.push({ topology: v.id, run: r });
    }
  }
  loads.latencyCluster = { before: loadBefore, after: loadAverage() };
  const pooled = (topology: string, phase: string) => {
    const runs = latencyCluster!.filter((x) => x.topology === topology);
    return {
      h: summarize(runs.flatMap((x) => x.run.raw[phase].handoff)),
      b: summarize(runs.flatMap((x) => x.run.raw[phase].bare)),
      lost: runs.reduce((a, x) => a + x.run.phases.find((p) => p.phase === phase)!.lostHandoff, 0),
    };
  };
  const rows: string[][] = [];
  for (const phase of [CONFIRM, SCAN]) {
    const one = pooled('single', phase);
    for (const v of variants) {
      const x = pooled(v.id, phase);
      const cl = v.id !== 'single';
      rows.push([
        `${phase.split(' ')[0]}, ${v.label}` + (x.lost ? ` (lost ${x.lost})` : ''),
        String(x.h.n),
        ms(x.h.p50),
        ms(x.h.p99),
        ms(x.h.max),
        `${ms(x.b.p50)}/${ms(x.b.p99)}`,
        ratio(x.h.p99, x.b.p99),
        cl ? ratio(x.h.p50, one.h.p50) : '',
        cl ? ratio(x.h.p99, one.h.p99) : '',
        cl ? (x.h.p99 <= 1.2 * one.h.p99 ? 'met' : 'MISSED') + (v.id === 'cluster' ? '' : ' (not the default)') : '',
      ]);
    }
  }
  const o = latencyCluster[0].run.options;
  const text = [
    `### Push latency across nodes on a Redis Cluster vs one redis-server (${pairs} run(s) of each variant, alternating; ${o.rounds} round(s) of ${o.flows} flows per run)`,
    '',
    table(['path, Handoff on', 'samples', 'Handoff p50', 'p99', 'max', 'bare Socket.IO p50/p99 (same runs)', 'Handoff/bare p99', 'Cluster/single p50', 'Cluster/single p99', 'target p99 ≤ 1.2x'], rows),
    '',
    `Milliseconds, as in the latency benchmark (Handoff node B → node A; the bare baseline on its own single redis-server in every run). Per run (topology: other processes' CPU share per round; confirm p99 Handoff/bare): ` +
      latencyCluster
        .map((x) => `${x.topology}: ${x.run.perRound.map((r) => `${(r.foreignCpu * 100).toFixed(0)}%`).join(', ')}; ${ms(x.run.phases[0].handoff.p99)}/${ms(x.run.phases[0].bare.p99)}`)
        .join(' · ') +
      `. Took ${((Date.now() - t) / 1000).toFixed(0)} s; load average before ${loads.latencyCluster.before}, after ${loads.latencyCluster.after}.`,
    '',
  ].join('\n');
  report(text);
}

const totalS = (Date.now() - started) / 1000;
const footer = `${quick ? 'Quick' : 'Full'} run of \`${run.join(' ')}\` on ${machine}; code ${code}; ${new Date().toISOString()}; total ${totalS.toFixed(0)} s.`;
process.stdout.write(footer + '\n');
out.push(footer, '');
const dir = `${ROOT}bench/results`;
mkdirSync(dir, { recursive: true });
const name = quick ? 'latest-quick' : 'latest';
writeFileSync(`${dir}/${name}.md`, out.join('\n'));
writeFileSync(`${dir}/${name}.json`, JSON.stringify(
    {
      date: new Date().toISOString(),
      quick,
      machine,
      code,
      totalS,
      loads,
      latency: latency && { ...latency, raw: undefined },
      memory,
      identity,
      approval,
      scale,
      waiting,
      latencyCluster: latencyCluster?.map((x) => ({ topology: x.topology, run: { ...x.run, raw: undefined } })),
    },
    null,
    2,
  ));
log(`results written to bench/results/${name}.{md,json}`);
clearTimeout(watchdog);
process.exit(0);
