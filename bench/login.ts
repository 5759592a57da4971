/**
 * Benchmark: async login throughput (issue #3).
 *
 *   node --conditions=source --import tsx bench/login.ts          # N=400, 2 repetitions, + Redis mode
 *   BENCH_QUICK=1 node --conditions=source --import tsx bench/login.ts   # N=100, 1 repetition
 *
 * Env: BENCH_LOGINS (N), BENCH_REPEAT, BENCH_INFLIGHT (client HTTP concurrency, default 50),
 * BENCH_REDIS=0 (skip Redis mode), BENCH_EMBEDDED=0 (skip embedded mode), BENCH_TIMEOUT_S (per flood, default 180).
 *
 * Env: BENCH_READ_EVERY_MS (default 20), BENCH_HEALTH_EVERY_MS (default 100): probe periods.
 * BENCH_FLOODS=throughput|probed: run only that kind of flood. BENCH_WARMUP (default 100): see warmUp.
 *
 * Per repetition, side by side on the same machine (a baseline before and after every flood; the
 * ratio uses their mean, because the machine's load drifts):
 *  1. Baseline: raw native `bcrypt.compare` at BCRYPT_COST=10 in a separate Node process
 *     (bench/login-bcrypt.ts, libuv's 4 threads), BENCH_BASELINE_N compares (default min(N, 100))
 *     with LOGIN_CONCURRENCY=4 in flight (the most the server's login workers run at once).
 *  2. Throughput flood, embedded mode: a fresh real server process, compiled (`tsc -b` runs first;
 *     `node server/dist/main.js`, as `npm start`) and warmed up (see warmUp) (ROLE=all, LOGIN_CONCURRENCY=4,
 *     BCRYPT_COST=10, limits lifted, one seeded user, BCRYPT_THREADS default = CPU count).
 *     N `POST /v1/sessions` with `Prefer: respond-async`, at most BENCH_INFLIGHT in flight; each
 *     202's topic is subscribed with its watch token on a Socket.IO connection (one per 50 logins:
 *     the server allows 50 subscriptions per connection); throughput = N / (first POST sent → last
 *     `succeeded` push received). Server event-loop delay p99 from its own `/metrics`
 *     (`nodejs_eventloop_lag_p99_seconds`: prom-client's monitorEventLoopDelay
 *     histogram, 10 ms resolution, reset at each scrape: the bench scrapes right before and right
 *     after the flood). Nothing else runs: the load generator shares the machine's cores.
 *  3. Probed flood: the same flood on a fresh server, plus outside probes from a separate probe
 *     process (bench/clients/prober.ts), so that a probe's latency is the server's and not this
 *     busy load generator's own event-loop delay:
 *     `GET /v1/flows/login:<id>` with Watch-Token (a plain read) every BENCH_READ_EVERY_MS on a
 *     random flow created so far (at most 10 in flight; a tick that finds 10 in flight is
 *     skipped), and `GET /healthz` every BENCH_HEALTH_EVERY_MS (one at a time). The reads are
 *     also split into those sent while POSTs were in flight and those after the last 202.
 *  4. If BENCH_REDIS != 0, both floods again in Redis mode: private redis-server, one ROLE=api
 *     node (flood, probes and /metrics go there) and one ROLE=worker process (LOGIN_CONCURRENCY=4).
 *     The throughput flood also runs in two more Redis layouts (BENCH_REDIS_LAYOUTS): one ROLE=all
 *     node, and the worker on a core of its own with its own baseline on that core (see redisRun).
 *  Every flood also reports the cores used, from /proc: the servers' password threads (niced,
 *  see server/src/users/bcrypt-pool.ts), each server process's other threads, redis-server, this
 *  bench process and the probe process.
 *
 * The load generator and the probes use node:http with keep-alive (bench/lib/http.ts), not fetch:
 * they share the 2 cores with the server, and fetch costs several times the CPU per request.
 * Both processes report their own event-loop p99. Every loop is bounded by count and time.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { FlowState } from '@handoff/protocol';
import { connectSocketIo, emitAck, type ClientSocket } from '../test/harness/clients.js';
import { startRedis } from '../test/harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../test/harness/server-process.js';
import type { ProbeResult } from './clients/prober.js';
import { cpuSample, cpuSecondsOf, foreignCpu, procStat, ROOT, spawnNode } from './lib/proc.js';
import { httpRequest, keepAliveAgent, type HttpResult } from './lib/http.js';
import { loadAverage, log, mapLimit, ms, summarize, table, withTimeout, type Summary } from './lib/util.js';

const QUICK = process.env.BENCH_QUICK === '1';
const N = Number(process.env.BENCH_LOGINS ?? (QUICK ? 100 : 400));
/** Compares per baseline run (a rate; run before and after every flood). */
const BASE_N = Number(process.env.BENCH_BASELINE_N ?? Math.min(N, QUICK ? 50 : 100));
/** Which floods run: BENCH_FLOODS=throughput|probed|both (default both). */
const FLOODS = ({ throughput: [false], probed: [true] } as Record<string, boolean[]>)[process.env.BENCH_FLOODS ?? ''] ?? [false, true];
/** Logins in the unmeasured flood that warms each fresh server up (see warmUp). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 100);
const REPEAT = Number(process.env.BENCH_REPEAT ?? (QUICK ? 1 : 2));
const IN_FLIGHT = Number(process.env.BENCH_INFLIGHT ?? 50);
const WITH_REDIS = process.env.BENCH_REDIS !== '0';
const WITH_EMBEDDED = process.env.BENCH_EMBEDDED !== '0';
type RedisLayout = 'one' | 'split' | 'pinned';
const LAYOUT_NAMES: Record<RedisLayout, string> = {
  one: 'redis (one node)',
  split: 'redis (api + worker)',
  pinned: 'redis (api + worker on its own core)',
};
/**
 * Redis-mode layouts of the throughput flood (BENCH_REDIS_LAYOUTS, comma-separated; default all
 * three): see redisRun. The probed flood runs `split` only.
 */
const REDIS_LAYOUTS = (process.env.BENCH_REDIS_LAYOUTS ?? 'one,split,pinned').split(',').filter((l): l is RedisLayout => l in LAYOUT_NAMES);
/** The pinned layout: the worker's CPU (and its baseline's), and the CPU of everything else. */
const WORKER_CPU = '1';
const OTHERS_CPU = '0';
/** Set every thread of process `pid` (and the threads it starts later) to run on `cpus` only. */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}
const FLOOD_TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 180) * 1000;
const COST = 10;
const LOGIN_CONCURRENCY = 4;
const HEALTH_EVERY_MS = Number(process.env.BENCH_HEALTH_EVERY_MS ?? 100);
const READ_EVERY_MS = Number(process.env.BENCH_READ_EVERY_MS ?? 20);
const READ_MAX_IN_FLIGHT = 10;
const SUBS_PER_SOCKET = 50;
const EMAIL = 'bench@example.com';
const PASSWORD = 'bench-password-123';

const TARGET_RATIO = 0.9;
const TARGET_LOOP_MS = 50;
const TARGET_READ_MS = 20;

const SERVER_ENV: Record<string, string | undefined> = {
  ROLE: 'all',
  LOGIN_CONCURRENCY: String(LOGIN_CONCURRENCY),
  BCRYPT_COST: String(COST),
  // "very high": the config caps these at 1,000,000 and 10,000.
  LOGIN_IP_PER_MINUTE: '1000000',
  LOGIN_MAX_FAILURES: '10000',
  SEED_USERS: `${EMAIL}:${PASSWORD}:Bench`,
  LOG_LEVEL: 'info',
  UV_THREADPOOL_SIZE: undefined, // server default (4), whatever this shell has
};

interface Baseline {
  n: number;
  cost: number;
  concurrency: number;
  threadpool: string;
  seconds: number;
  perSecond: number;
  /** Event-loop delay p99 of the baseline process while its pool runs the compares. */
  loopP99Ms: number;
}

/** Two baselines around one flood (the machine's load drifts): mean throughput, worst loop p99. */
function bracket(a: Baseline, b: Baseline): Baseline {
  return { ...a, perSecond: (a.perSecond + b.perSecond) / 2, loopP99Ms: Math.max(a.loopP99Ms, b.loopP99Ms) };
}

interface FloodResult {
  mode: string;
  n: number;
  succeeded: number;
  failed: number;
  postErrors: number;
  seconds: number;
  perSecond: number;
  post: Summary;
  health: Summary;
  healthErrors: number;
  reads: Summary;
  readsDuringPosts: Summary;
  readsAfterPosts: Summary;
  /** Whether the outside probes (GET /v1/flows, /healthz) ran during this flood. */
  probes: boolean;
  /**
   * Average cores used during the flood: the servers' bcrypt threads; every other thread of each
   * server process, by name (embedded: `server`; Redis mode: `api`, `worker`); redis-server (0 in
   * embedded mode); this bench process; the probe process (0 without probes).
   */
  cores: { bcrypt: number; servers: Array<{ name: string; cores: number; main: number }>; redis: number; bench: number; prober: number };
  readErrors: number;
  readsSkipped: number;
  serverLoopP99Ms: number;
  serverLoopMaxMs: number;
  serverLoopMeanMs: number;
  clientLoopP99Ms: number;
  /** The probe process's own event-loop delay p99 (NaN without probes). */
  proberLoopP99Ms: number;
  foreignCpu: number;
  /** `state` pushes received on the one socket (transitions and queue-position updates). */
  pushes: number;
}

/** The baseline on the whole machine, or on the CPUs `cpus` only (taskset's list, e.g. `1`). */
function runBaseline(n: number, cpus?: string): Promise<Baseline> {
  const env: NodeJS.ProcessEnv = { ...process.env, BCRYPT_N: String(n), BCRYPT_COST: String(COST), BCRYPT_CONCURRENCY: String(LOGIN_CONCURRENCY) };
  delete env.UV_THREADPOOL_SIZE;
  const node = [process.execPath, '--conditions=source', '--import', 'tsx', 'bench/login-bcrypt.ts'];
  const [file, ...args] = cpus === undefined ? node : ['taskset', '-c', cpus, ...node];
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: ROOT, env, timeout: FLOOD_TIMEOUT_MS, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`baseline failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop()!));
        } catch {
          reject(new Error(`baseline printed no result:\n${stdout}\n${stderr}`));
        }
      },
    );
  });
}

async function scrape(url: string): Promise<Map<string, number>> {
  const res = await withTimeout(fetch(url + '/metrics'), 10_000, 'GET /metrics');
  const text = await res.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(nodejs_eventloop_lag_\w+_seconds)(?:\{[^}]*\})? ([0-9.eE+-]+|NaN)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

const agent = keepAliveAgent(IN_FLIGHT);
function postLogin(url: string, wait?: number): Promise<HttpResult> {
  return httpRequest(agent, url + '/v1/sessions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: wait ? `respond-async, wait=${wait}` : 'respond-async' },
    body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
    timeoutMs: 30_000,
  });
}

interface ThreadCpu {
  /** CPU seconds of the password hashing threads (the niced ones, users/bcrypt-pool.ts). */
  bcrypt: number;
  /** CPU seconds of every other thread (event loop, GC, libuv). */
  other: number;
  /** Of `other`: the main thread's (the event loop's). */
  main: number;
}

/** CPU seconds used so far by a server process's threads, split by priority (Linux /proc). */
function threadCpu(pid: number): ThreadCpu {
  const out = { bcrypt: 0, other: 0, main: 0 };
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const f = procStat(`/proc/${pid}/task/${tid}/stat`);
    if (!f) continue; // the thread ended meanwhile
    const seconds = cpuSecondsOf(f);
    if (Number(f[16]) > 0) out.bcrypt += seconds; // nice
    else out.other += seconds;
    if (tid === String(pid)) out.main += seconds;
  }
  return out;
}

/** CPU seconds used so far by a whole process (all threads; Linux /proc). */
function processCpu(pid: number | undefined): number {
  const f = pid === undefined ? null : procStat(`/proc/${pid}/stat`);
  return f ? cpuSecondsOf(f) : 0;
}

/** What one flood runs against: the URL, the server processes (named), and redis-server if any. */
interface Target {
  url: string;
  servers: Array<{ name: string; pid: number }>;
  redisPid?: number;
}

/**
 * Warm a fresh server up before it is measured: a few logins that wait for their result
 * (`Prefer: wait`, and the first hashes on the password threads), then a small unmeasured flood
 * of WARMUP logins through the same path as the measured one. A fresh Node process runs its first
 * requests in unoptimised code and compiles the hot paths on background threads meanwhile; the
 * flood measures a server in service, not that one-off start. BENCH_WARMUP=0 measures it cold.
 */
async function warmUp(mode: string, target: Target): Promise<void> {
  for (let i = 0; i < LOGIN_CONCURRENCY; i++) {
    const r = await withTimeout(postLogin(target.url, 10), 20_000, 'warm-up login');
    if (r.status !== 200) throw new Error(`warm-up login answered ${r.status}`);
  }
  if (WARMUP > 0) await flood(`${mode} warm-up`, target, false, WARMUP);
}

/** Flood a warm server with `n` async logins; see the file comment. */
async function flood(mode: string, { url, servers, redisPid }: Target, probes: boolean, n = N): Promise<FloodResult> {
  const pids = servers.map((s) => s.pid);
  // The server allows 50 subscriptions per connection (MAX_SUBSCRIPTIONS_PER_CONNECTION), so
  // logins are spread over ceil(n / SUBS_PER_SOCKET) Socket.IO connections, in order.
  const sockets: ClientSocket[] = [];
  for (let i = 0; i < Math.ceil(n / SUBS_PER_SOCKET); i++) sockets.push(await connectSocketIo(url));
  const doneAt = new Map<string, number>();
  let failed = 0;
  let finish: () => void = () => {};
  const allDone = new Promise<void>((r) => (finish = r));
  let postErrors = 0;
  const settle = () => {
    if (doneAt.size + failed + postErrors >= n) finish();
  };
  const finalSeen = new Set<string>();
  let pushes = 0;
  const onState = (s: FlowState) => {
    if (finalSeen.has(s.topic)) return;
    if (s.state === 'succeeded') {
      finalSeen.add(s.topic);
      doneAt.set(s.topic, performance.now());
    } else if (s.state === 'failed' || s.state === 'expired' || s.state === 'cancelled') {
      finalSeen.add(s.topic);
      failed++;
      if (failed <= 3) log(`${mode}: login ${s.topic} ended ${s.state}`, JSON.stringify(s.error ?? {}));
    } else return;
    settle();
  };
  for (const socket of sockets) {
    socket.on('state', (s) => {
      pushes++;
      onState(s as FlowState); // login flows only: no user channel here
    });
  }

  await scrape(url); // resets the server's event-loop histogram: the next scrape covers the flood
  const clientLoop = monitorEventLoopDelay({ resolution: 10 });
  clientLoop.enable();
  const cpu0 = cpuSample();
  const serverCpu0 = pids.map(threadCpu);
  const redisCpu0 = processCpu(redisPid);
  const benchCpu0 = process.cpuUsage();

  // The probes run in their own process (bench/clients/prober.ts): see the file comment.
  const prober = probes ? spawnNode('prober', 'bench/clients/prober.ts', {}) : null;
  if (prober) {
    const start = { url, readEveryMs: READ_EVERY_MS, healthEveryMs: HEALTH_EVERY_MS, maxInFlight: READ_MAX_IN_FLIGHT, timeoutMs: FLOOD_TIMEOUT_MS };
    await prober.request({ type: 'start', ...start }, 'started');
  }
  const proberCpu0 = processCpu(prober?.pid);

  const postMs: number[] = [];
  const t0 = performance.now();
  const indices = Array.from({ length: n }, (_, i) => i);
  const posting = mapLimit(indices, IN_FLIGHT, async (i) => {
    const socket = sockets[Math.floor(i / SUBS_PER_SOCKET)];
    const t = performance.now();
    try {
      const res = await postLogin(url);
      const body = JSON.parse(res.body) as { topic: string; watchToken: string };
      if (res.status !== 202) throw new Error(`POST /v1/sessions answered ${res.status}: ${JSON.stringify(body)}`);
      postMs.push(performance.now() - t);
      prober?.child.send({ type: 'flow', path: (res.headers.location as string | undefined) ?? `/v1/flows/${body.topic}`, watchToken: body.watchToken });
      const ack = (await emitAck(socket, 'subscribe', { topic: body.topic, watchToken: body.watchToken })) as
        | { ok: true; state: FlowState }
        | { ok: false; error: unknown };
      if (!ack.ok) throw new Error(`subscribe refused: ${JSON.stringify(ack.error)}`);
      onState(ack.state); // already decided before the subscription took
    } catch (err) {
      postErrors++;
      if (postErrors <= 3) log(`${mode}: login request failed: ${(err as Error).message}`);
      settle();
    }
  });

  void posting.then(() => prober?.child.send({ type: 'posts-done' }));
  let timedOut = false;
  try {
    await withTimeout(Promise.all([posting, allDone]), FLOOD_TIMEOUT_MS, `${mode} flood`);
  } catch (err) {
    timedOut = true;
    log(`${mode}: ${(err as Error).message} (${doneAt.size}/${n} succeeded)`);
  }
  const lastDone = Math.max(t0, ...doneAt.values());
  const cpu1 = cpuSample();
  const serverCpu1 = pids.map(threadCpu);
  const redisCpu = processCpu(redisPid) - redisCpu0;
  const proberCpu = processCpu(prober?.pid) - proberCpu0;
  const benchCpu = process.cpuUsage(benchCpu0);
  const floodS = (performance.now() - t0) / 1000;
  const sum = (list: ThreadCpu[], key: keyof ThreadCpu) => list.reduce((n, c) => n + c[key], 0);
  const loop = await scrape(url).catch(() => new Map<string, number>());
  clientLoop.disable();
  const probed: ProbeResult = prober
    ? await prober.request<ProbeResult>({ type: 'stop' }, 'result', 15_000)
    : { readDuringMs: [], readAfterMs: [], readErrors: 0, readsSkipped: 0, healthMs: [], healthErrors: 0, loopP99Ms: NaN };
  for (const socket of sockets) socket.close();

  const seconds = (lastDone - t0) / 1000;
  return {
    mode,
    n: n,
    succeeded: doneAt.size,
    failed,
    postErrors,
    seconds,
    perSecond: timedOut || doneAt.size < n ? NaN : n / seconds,
    post: summarize(postMs),
    health: summarize(probed.healthMs),
    healthErrors: probed.healthErrors,
    reads: summarize([...probed.readDuringMs, ...probed.readAfterMs]),
    readsDuringPosts: summarize(probed.readDuringMs),
    readsAfterPosts: summarize(probed.readAfterMs),
    probes,
    cores: {
      bcrypt: (sum(serverCpu1, 'bcrypt') - sum(serverCpu0, 'bcrypt')) / floodS,
      servers: servers.map(({ name }, i) => ({
        name,
        cores: (serverCpu1[i].other - serverCpu0[i].other) / floodS,
        main: (serverCpu1[i].main - serverCpu0[i].main) / floodS,
      })),
      redis: redisCpu / floodS,
      bench: (benchCpu.user + benchCpu.system) / 1e6 / floodS,
      prober: proberCpu / floodS,
    },
    readErrors: probed.readErrors,
    readsSkipped: probed.readsSkipped,
    serverLoopP99Ms: (loop.get('nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000,
    serverLoopMaxMs: (loop.get('nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000,
    serverLoopMeanMs: (loop.get('nodejs_eventloop_lag_mean_seconds') ?? NaN) * 1000,
    clientLoopP99Ms: clientLoop.percentile(99) / 1e6,
    proberLoopP99Ms: probed.loopP99Ms,
    foreignCpu: foreignCpu(cpu0, cpu1),
    pushes,
  };
}

/** Started servers, killed if the bench is interrupted. */
const live = new Set<ServerProcess>();
async function start(env: Record<string, string | undefined>): Promise<ServerProcess> {
  const p = await startServerProcess(env, { built: true });
  live.add(p);
  p.child.once('exit', () => live.delete(p));
  return p;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const p of live) p.child.kill('SIGKILL');
    process.exit(130);
  });
}

async function embeddedRun(probes: boolean): Promise<FloodResult> {
  const server = await start(SERVER_ENV);
  try {
    const target = { url: server.url, servers: [{ name: 'server', pid: server.child.pid! }] };
    await warmUp('embedded', target);
    return await flood('embedded', target, probes);
  } finally {
    await server.stop(5000);
  }
}

/**
 * Redis mode, in one of three layouts:
 *  - `split`: one ROLE=api node taking the flood and one ROLE=worker process, sharing the 2 cores
 *    with redis-server, this load generator and the hashing;
 *  - `one`: a single ROLE=all node (API and login workers in one process, BullMQ and the store on Redis);
 *  - `pinned`: `split` with the worker process on a core of its own (CPU 1) and the API node,
 *    redis-server and this process on the other (CPU 0), as a deployment that scales workers out
 *    runs them. Its baseline is raw bcrypt on the worker's core: the ratio is then the queue's
 *    own overhead on the cores that hash, which the shared layouts mix with the API's and the
 *    load generator's CPU. (Linux `taskset`; every thread, the hashing threads included.)
 */
async function redisRun(probes: boolean, layout: RedisLayout): Promise<FloodResult> {
  const redis = await startRedis();
  const procs: ServerProcess[] = [];
  let selfPinned = false;
  try {
    const one = layout === 'one';
    const api = await start({ ...SERVER_ENV, ROLE: one ? 'all' : 'api', REDIS_URL: redis.url });
    procs.push(api);
    const servers = [{ name: one ? 'server' : 'api', pid: api.child.pid! }];
    if (!one) {
      const worker = await start({ ...SERVER_ENV, ROLE: 'worker', REDIS_URL: redis.url, SEED_USERS: undefined });
      procs.push(worker);
      servers.push({ name: 'worker', pid: worker.child.pid! });
    }
    if (layout === 'pinned') {
      pin(servers[1].pid, WORKER_CPU);
      for (const pid of [api.child.pid!, redis.pid]) pin(pid, OTHERS_CPU);
      pin(process.pid, OTHERS_CPU);
      selfPinned = true;
    }
    const target = { url: api.url, servers, redisPid: redis.pid };
    await warmUp('redis', target);
    return await flood(LAYOUT_NAMES[layout], target, probes);
  } finally {
    await Promise.all(procs.map((p) => p.stop(5000)));
    await redis.stop();
    // Only once the servers are stopped: if taskset failed, this must not keep them running.
    if (selfPinned) pin(process.pid, `${OTHERS_CPU},${WORKER_CPU}`);
  }
}

const yes = (ok: boolean, measured: boolean) => (!measured ? 'n/a' : ok ? 'yes' : 'no');
const per = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');

function rows(run: number, pair: [Baseline, Baseline], r: FloodResult, cpus?: string): string[][] {
  const base = bracket(...pair);
  const ratio = r.perSecond / base.perSecond;
  const m = Number.isFinite(ratio);
  const tag = `#${run} ${r.mode}, ${r.probes ? 'probed flood' : 'throughput flood'}`;
  const out: string[][] = [
    [
      `${tag}: logins/s (N=${r.n}, ${r.succeeded} ok, ${r.failed + r.postErrors} failed)`,
      per(r.perSecond),
      `${per(base.perSecond)} (raw bcrypt.compare, ${base.concurrency} in flight${cpus === undefined ? '' : `, on CPU ${cpus} only`}; mean of ${per(pair[0].perSecond)} before, ${per(pair[1].perSecond)} after)`,
      r.probes ? `${m ? ratio.toFixed(2) + 'x' : 'n/a'} (info: with probes)` : `${m ? ratio.toFixed(2) + 'x' : 'n/a'} (target ≥ ${TARGET_RATIO}x)`,
      r.probes ? '—' : yes(ratio >= TARGET_RATIO, m),
    ],
    [
      `${tag}: server event-loop delay p99 (/metrics, 10 ms resolution; max ${ms(r.serverLoopMaxMs)}, mean ${ms(r.serverLoopMeanMs)})`,
      `${ms(r.serverLoopP99Ms)} ms`,
      `${ms(base.loopP99Ms)} ms (bcrypt-only process, worse of the two)`,
      `< ${TARGET_LOOP_MS} ms`,
      yes(r.serverLoopP99Ms < TARGET_LOOP_MS, Number.isFinite(r.serverLoopP99Ms)),
    ],
  ];
  if (r.probes) {
    out.push(
      [
        `${tag}: GET /v1/flows/login:<id> p99, one every ${READ_EVERY_MS} ms from the probe process (n=${r.reads.n}, p50 ${ms(r.reads.p50)}, max ${ms(r.reads.max)}, errors ${r.readErrors}, skipped ${r.readsSkipped}; probe process's own loop p99 ${ms(r.proberLoopP99Ms)}, bench process's ${ms(r.clientLoopP99Ms)})`,
        `${ms(r.reads.p99)} ms`,
        '—',
        `< ${TARGET_READ_MS} ms`,
        yes(r.reads.p99 < TARGET_READ_MS, r.reads.n > 0),
      ],
      [
        `${tag}: the same reads, p50 / p99: while POSTs were in flight (n=${r.readsDuringPosts.n}) · after the last 202 (n=${r.readsAfterPosts.n})`,
        `${ms(r.readsDuringPosts.p50)} / ${ms(r.readsDuringPosts.p99)} · ${ms(r.readsAfterPosts.p50)} / ${ms(r.readsAfterPosts.p99)} ms`,
        '—',
        'info',
        '—',
      ],
      [
        `${tag}: GET /healthz p99, one every ${HEALTH_EVERY_MS} ms (n=${r.health.n}, p50 ${ms(r.health.p50)}, max ${ms(r.health.max)}, errors ${r.healthErrors})`,
        `${ms(r.health.p99)} ms`,
        '—',
        'info',
        '—',
      ],
    );
  }
  out.push(
    [
      `${tag}: POST 202 latency p50 / p99 (${IN_FLIGHT} in flight); state pushes received`,
      `${ms(r.post.p50)} / ${ms(r.post.p99)} ms; ${r.pushes} pushes`,
      '—',
      'info',
      '—',
    ],
    [
      `${tag}: cores used: bcrypt threads / ${r.cores.servers.map((p) => `${p.name}'s other threads (of which event loop)`).join(' / ')}${r.cores.redis ? ' / redis-server' : ''} / bench process${r.probes ? ' / probe process' : ''}; others' CPU share`,
      `${[
        r.cores.bcrypt.toFixed(2),
        ...r.cores.servers.map((p) => `${p.cores.toFixed(2)} (${p.main.toFixed(2)})`),
        ...(r.cores.redis ? [r.cores.redis.toFixed(2)] : []),
        r.cores.bench.toFixed(2),
        ...(r.probes ? [r.cores.prober.toFixed(2)] : []),
      ].join(' / ')}; ${(r.foreignCpu * 100).toFixed(0)}%`,
      '—',
      'info',
      '—',
    ],
  );
  return out;
}

const started = performance.now();
const globalDeadline = setTimeout(() => {
  log('global deadline (20 min) passed; exiting');
  process.exit(2);
}, 20 * 60_000);
globalDeadline.unref();

// The servers run compiled, as `npm start` runs them: build what changed first (incremental).
execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b'], { cwd: ROOT, stdio: 'inherit' });
log(`async login bench: N=${N}, in flight ${IN_FLIGHT}, repeat ${REPEAT}, cost ${COST}, LOGIN_CONCURRENCY ${LOGIN_CONCURRENCY}, redis ${WITH_REDIS}`);
const allRows: string[][] = [];
const loads: string[] = [];
/**
 * One flood with a baseline after it; `prev` is the baseline before it. With `cpus`, the flood's
 * baselines run on those CPUs only (one before and one after), and `prev` is passed on unchanged.
 */
async function measured(run: number, prev: Baseline, label: string, go: () => Promise<FloodResult>, cpus?: string): Promise<Baseline> {
  try {
    const before = cpus === undefined ? prev : await runBaseline(BASE_N, cpus);
    const r = await go();
    log(`run ${run}: ${label} ${per(r.perSecond)} logins/s (${r.seconds.toFixed(1)} s); baseline…`);
    const next = await runBaseline(BASE_N, cpus);
    log(`run ${run}: raw bcrypt ${next.perSecond.toFixed(1)}/s${cpus === undefined ? '' : ` on CPU ${cpus}`}`);
    allRows.push(...rows(run, [before, next], r, cpus));
    return cpus === undefined ? next : prev;
  } catch (err) {
    log(`run ${run}: ${label} failed: ${(err as Error).message}`);
    allRows.push([`#${run} ${label}`, 'failed', '—', (err as Error).message.split('\n')[0], 'n/a']);
    return prev;
  }
}

for (let run = 1; run <= REPEAT; run++) {
  const before = loadAverage(' / ');
  log(`run ${run}: loadavg ${before}; baseline (${BASE_N} compares)…`);
  let base = await runBaseline(BASE_N);
  log(`run ${run}: raw bcrypt ${base.perSecond.toFixed(1)}/s`);
  for (const probes of FLOODS) {
    const kind = probes ? 'probed' : 'throughput';
    if (WITH_EMBEDDED) base = await measured(run, base, `embedded ${kind} flood`, () => embeddedRun(probes));
    const layouts = !WITH_REDIS ? [] : probes ? REDIS_LAYOUTS.filter((l) => l === 'split') : REDIS_LAYOUTS;
    for (const layout of layouts) {
      const cpus = layout === 'pinned' ? WORKER_CPU : undefined;
      base = await measured(run, base, `${LAYOUT_NAMES[layout]} ${kind} flood`, () => redisRun(probes, layout), cpus);
    }
  }
  loads.push(`run ${run}: loadavg (1/5/15 min) before ${before}, after ${loadAverage(' / ')}`);
}

const out = [
  table(['metric', 'Handoff', 'baseline', 'ratio / target', 'met?'], allRows),
  '',
  `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}. N=${N} logins per flood, ${BASE_N} compares per baseline, client HTTP in flight ${IN_FLIGHT}, BCRYPT_COST=${COST}, LOGIN_CONCURRENCY=${LOGIN_CONCURRENCY}, UV_THREADPOOL_SIZE default (4).`,
  ...loads,
  `Total runtime: ${((performance.now() - started) / 1000).toFixed(0)} s.`,
].join('\n');
console.log(out);
process.exit(0);
