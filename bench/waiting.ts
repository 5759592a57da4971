/**
 * Cost of a waiting client (issue 15): server CPU per client-hour of a browser waiting for its QR
 * flow, by transport, on one Redis-mode Handoff node, net of the idle node's own timers.
 *
 * One redis-server, one real Handoff node (`bench/servers/handoff.ts` = server/src/main.ts, Redis
 * mode, default ROLE), BENCH_WAITING_FLOWS QR flows created first (so the idle node holds them too).
 * Then windows of BENCH_WAITING_SECONDS (60 s; quick 15 s), one after another, each with a fresh
 * holder process (bench/clients/holder.ts) that opens its clients, 3 s of settling, then the
 * window (CPU of the node's process tree from /proc), then the holder closes:
 *   /v1/ws                        N idle subscribers, one flow each (server pings every 25 s)
 *   Socket.IO                     N idle subscribers (Engine.IO ping every 25 s)
 *   HTTP long-poll                N clients: GET /v1/flows/{topic}?after=<v>&wait=30, again on
 *                                 every answer (the first wait 1–30 s at random: spread cycles)
 *   1 Hz polling                  M clients: GET /v1/flows/{topic} once a second, random phases
 * with an idle window (no client: the node's own timers, expiry sweep, metrics, …) before the
 * first and after each of them, since the idle node's CPU drifts with the machine's load by about
 * as much as 10,000 idle sockets cost. CPU-s per client-hour = (node CPU/s in the window − the mean
 * node CPU/s of the idle windows just before and after it) × 3600 / clients. Nothing is ever pushed: these are clients waiting. Other processes' CPU share is
 * reported per window (a busy machine slows the node's work, not its amount, but re-run if it is
 * high). Knobs: BENCH_WAITING_CLIENTS (N, 10000; quick 1000), BENCH_WAITING_POLLERS (M, 2000;
 * quick 200), BENCH_WAITING_SECONDS, BENCH_WAITING_NOFILE (20000).
 */
import { startRedis } from '../test/harness/redis-server.js';
import { handoffBenchEnv } from './lib/handoff-env.js';
import { closeHolder, holderConnect, startHolder, type Holder, type HolderTransport } from './lib/holders.js';
import { httpRequest, keepAliveAgent } from './lib/http.js';
import { cpuSample, foreignCpu, sleep, startServer, treeCpu, type ServerChild } from './lib/proc.js';
import { log, mapLimit } from './lib/util.js';

export interface WaitingOptions {
  clients: number;
  pollers: number;
  seconds: number;
  nofile: number;
}

export interface WaitingWindow {
  id: 'idle' | HolderTransport;
  label: string;
  clients: number;
  failed: number;
  /** Node CPU seconds per second over the window. */
  cpuPerS: number;
  foreignCpu: number;
  seconds: number;
  /** HTTP watchers only: requests answered and failed over the holder's life. */
  requests?: number;
  errors?: number;
  /** Net CPU-s per client-hour (idle windows: NaN). */
  perClientHour: number;
  /** Node CPU/s of the idle windows before and after (the net's baseline). */
  idleAround?: [number, number];
}

export interface WaitingResult {
  options: WaitingOptions;
  idleCpuPerS: number;
  windows: WaitingWindow[];
}

const LABELS: Record<WaitingWindow['id'], string> = {
  idle: 'idle node (no client)',
  ws: 'idle `/v1/ws` subscribers',
  sio: 'idle Socket.IO subscribers',
  longpoll: 'HTTP long-poll (wait=30)',
  poll: 'polling GET state at 1 Hz',
};

export async function runWaiting(opts: WaitingOptions): Promise<WaitingResult> {
  const redis = await startRedis();
  let server: ServerChild | undefined;
  let holder: Holder | undefined;
  try {
    server = await startServer(
      'waiting-node',
      'bench/servers/handoff.ts',
      handoffBenchEnv('bench-wait', { REDIS_URL: redis.url }),
      { nofile: opts.nofile },
    );
    const s = server;
    const agent = keepAliveAgent(32);
    const count = Math.max(opts.clients, opts.pollers);
    const t = Date.now();
    const flows = await mapLimit(Array.from({ length: count }), 32, async () => {
      const res = await httpRequest(agent, s.url + '/v1/qr', { method: 'POST', headers: { 'user-agent': 'Bench/1.0' }, timeoutMs: 30_000 });
      if (res.status !== 201) throw new Error(`POST /v1/qr: ${res.status} ${res.body.slice(0, 200)}`);
      const body = JSON.parse(res.body) as { topic: string; watchToken: string };
      return { topic: body.topic, watchToken: body.watchToken };
    });
    agent.destroy();
    log(`waiting: node ${s.url}, ${count} flows created in ${((Date.now() - t) / 1000).toFixed(0)} s`);

    const windows: WaitingWindow[] = [];
    const window = async (id: WaitingWindow['id'], clients: number) => {
      let failed = 0;
      if (id !== 'idle') {
        holder = await startHolder(`waiting-holder-${id}`, { nofile: opts.nofile });
        const r = await holderConnect(holder, { transport: id, url: s.url, subs: flows.slice(0, clients), concurrency: 100 }, `${id} clients`);
        failed = r.failed;
        clients = r.ok;
      }
      await sleep(3000);
      const cpu0 = cpuSample();
      const n0 = treeCpu(s.pid);
      const w0 = performance.now();
      await sleep(opts.seconds * 1000);
      const wall = (performance.now() - w0) / 1000;
      const cpuPerS = (treeCpu(s.pid) - n0) / wall;
      const foreign = foreignCpu(cpu0, cpuSample());
      let counts: { requests: number; errors: number } | undefined;
      if (holder) {
        counts = await closeHolder(holder);
        holder = undefined;
      }
      const w: WaitingWindow = { id, label: LABELS[id], clients, failed, cpuPerS, foreignCpu: foreign, seconds: wall, perClientHour: NaN, ...(id === 'longpoll' || id === 'poll' ? counts : {}) };
      windows.push(w);
      log(`  ${w.label}: ${clients} clients, node ${(cpuPerS * 100).toFixed(2)}% of a core, other processes ${(foreign * 100).toFixed(0)}%${counts && (id === 'longpoll' || id === 'poll') ? `, ${counts.requests} requests, ${counts.errors} errors` : ''}`);
      await sleep(2000);
    };

    await window('idle', 0);
    for (const [id, n] of [['ws', opts.clients], ['sio', opts.clients], ['longpoll', opts.clients], ['poll', opts.pollers]] as const) {
      await window(id, n);
      await window('idle', 0);
    }
    const idle = windows.filter((w) => w.id === 'idle');
    const idleCpuPerS = idle.reduce((a, w) => a + w.cpuPerS, 0) / idle.length;
    windows.forEach((w, i) => {
      if (w.id === 'idle' || w.clients <= 0) return;
      w.idleAround = [windows[i - 1].cpuPerS, windows[i + 1].cpuPerS];
      w.perClientHour = ((w.cpuPerS - (w.idleAround[0] + w.idleAround[1]) / 2) * 3600) / w.clients;
    });
    return { options: opts, idleCpuPerS, windows };
  } finally {
    if (holder) await closeHolder(holder);
    await server?.stop();
    await redis.stop();
  }
}
