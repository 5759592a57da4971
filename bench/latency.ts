/**
 * Benchmark 1: push latency across nodes, Handoff vs a bare Socket.IO + Redis adapter pair.
 *
 * One private redis-server. Handoff: two real server processes (A, B) in Redis mode, shared
 * REDIS_PREFIX. Baseline: two bare Socket.IO servers (bench/servers/bare-socketio.ts) with
 * @socket.io/redis-adapter on the same redis-server under another key.
 *
 * Handoff: N QR flows created on A, one browser Socket.IO client per flow on A subscribed with its
 * watch token; phone sockets (logged in as Ana) on B scan and then confirm each flow. Latency =
 * `qr:scan`/`qr:confirm` emitted on B → the `state` push (`scanned`/`confirmed`) received on A.
 * Baseline: one client per room on bare A; trigger sockets on bare B emit `trigger {room, state}`,
 * B does `io.to(room).emit('state', state)`. Latency = trigger emitted → `state` received on A.
 * Both ends live in the bench process, so one clock (performance.now) times both.
 *
 * Sends go in waves (WAVE messages back to back, default 1; wait until every push and ack of the
 * wave has arrived; pause GAP_MS), Handoff and baseline waves alternating, so both see the same
 * machine and neither measures the queue its own load built up. A warm-up on 100 extra flows
 * (their sockets closed afterwards) precedes ROUNDS rounds; each round moves every browser socket
 * to a fresh flow, then scans all N and confirms all N. The CPU used by processes outside the
 * benchmark is measured per round (/proc), so rounds disturbed by other work can be told apart.
 *
 * `topology: 'cluster'` runs the two Handoff nodes on a Redis Cluster instead (three masters, three
 * replicas, the test harness's startRedisDeployment → startRedisCluster; REDIS_CLUSTER_NODES); the
 * bare baseline stays on its own single redis-server, so it is the same reference in both.
 */
import { performance } from 'node:perf_hooks';
import type { FlowState } from '@handoff/protocol';
import { connectSocketIo, emitAck, type ClientSocket } from '../test/harness/clients.js';
import { ANA, createQr, login, startRedisDeployment, type RedisTopology } from '../test/harness/cluster.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../test/harness/redis-server.js';
import { handoffBenchEnv } from './lib/handoff-env.js';
import { cpuSample, fdCount, foreignCpu, sleep, startServer, type ServerChild } from './lib/proc.js';
import { log, mapLimit, summarize, withTimeout, type Summary } from './lib/util.js';

export interface LatencyOptions {
  /** Concurrent flows (browser sockets subscribed on A). */
  flows: number;
  /** Extra flows/rooms used for warm-up only (their browser sockets close before measuring). */
  warmup: number;
  /** Messages sent back to back per wave. */
  wave: number;
  /** Pause after each wave, ms. */
  gapMs: number;
  /** Phone (Handoff) / trigger (bare) sockets on B. */
  senders: number;
  /** Rounds of scan + confirm over `flows` fresh flows each (samples add up). */
  rounds: number;
  /** A round is "quiet" when other processes used less than this share (0..1) of the machine's CPU. */
  quietCpu: number;
  /** Handoff's Redis: one redis-server (default) or a Redis Cluster; the bare baseline always uses one redis-server. */
  topology?: Extract<RedisTopology, 'single' | 'cluster'>;
  /** On a Cluster: replicas per master (default 1; 0 = three masters alone). */
  clusterReplicas?: 0 | 1;
  /** Extra environment for the two Handoff nodes (e.g. REDIS_WAIT_REPLICAS=0). */
  handoffEnv?: Record<string, string>;
}

export interface LatencyPhase {
  /** What was timed, e.g. `confirm`. */
  phase: string;
  handoff: Summary;
  bare: Summary;
  lostHandoff: number;
  lostBare: number;
  /** Emit on B → its ack back on B (Handoff: the transition committed in Redis and published). */
  handoffAck: Summary;
  bareAck: Summary;
  /** [Handoff p99, bare p99] of each round, to show the spread. */
  roundP99: Array<[number, number]>;
}

export interface LatencyResult {
  options: LatencyOptions;
  /** Pooled over every round. */
  phases: LatencyPhase[];
  /** Pooled over the quiet rounds only (empty when none was quiet). */
  quiet: LatencyPhase[];
  quietRounds: number;
  perRound: Array<{ round: number; foreignCpu: number; phases: LatencyPhase[] }>;
  /** Open fds of Handoff node A with all browsers connected. */
  handoffAFds: number;
  setupMs: number;
  /** Every sample of every round, by phase name (to pool several runs). */
  raw: Record<string, { handoff: number[]; bare: number[] }>;
}

type System = 'handoff' | 'bare';

/** Pushes awaited: `${system}|${id}|${state}` → when it was sent and who waits. */
class PushWaiters {
  private readonly waiting = new Map<string, { t0: number; resolve: (latency: number) => void }>();

  expect(key: string, t0: number): Promise<number> {
    return new Promise((resolve) => this.waiting.set(key, { t0, resolve }));
  }

  arrived(key: string): void {
    const now = performance.now();
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    w.resolve(now - w.t0);
  }

  drop(keys: string[]): void {
    for (const k of keys) this.waiting.delete(k);
  }
}

interface Item {
  /** Push key awaited on A. */
  key: string;
  /** Emit on B (with ack); resolves with the ack. */
  send(): Promise<any>;
}

/** Send one wave; resolves with the latencies that arrived (and how many were lost). */
async function runWave(waiters: PushWaiters, items: Item[], timeoutMs = 10_000): Promise<{ latencies: number[]; acks: number[]; lost: number }> {
  const latencies: number[] = [];
  const acks: number[] = [];
  const all: Promise<unknown>[] = [];
  for (const item of items) {
    const t0 = performance.now();
    const got = waiters.expect(item.key, t0).then((l) => void latencies.push(l));
    const acked = item.send().then((ack) => {
      acks.push(performance.now() - t0);
      if (!ack?.ok) throw new Error(`nack: ${JSON.stringify(ack).slice(0, 300)}`);
    });
    all.push(got, acked);
  }
  try {
    await withTimeout(Promise.all(all), timeoutMs, 'wave');
    return { latencies, acks, lost: 0 };
  } catch (err) {
    waiters.drop(items.map((i) => i.key));
    log(`  wave problem: ${(err as Error).message}`);
    return { latencies, acks, lost: items.length - latencies.length };
  }
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export const CONFIRM = 'confirm → confirmed push';
export const SCAN = 'scan → scanned push';

type Flow = { id: string; topic: string; watchToken: string };

async function subscribe(s: ClientSocket, flow: Flow): Promise<void> {
  const res = await emitAck(s, 'subscribe', { topic: flow.topic, watchToken: flow.watchToken });
  if (!res?.ok || res.state?.state !== 'pending') throw new Error(`subscribe failed: ${JSON.stringify(res)}`);
}

export async function runLatency(opts: LatencyOptions): Promise<LatencyResult> {
  const setupStarted = Date.now();
  const deployment = await startRedisDeployment(opts.topology ?? 'single', { clusterReplicas: opts.clusterReplicas });
  let redis: RedisHandle;
  try {
    redis = deployment.redis ?? (await startRedis());
  } catch (err) {
    await deployment.stop();
    throw err;
  }
  const servers: ServerChild[] = [];
  const sockets: ClientSocket[] = [];
  try {
    const handoffEnv = handoffBenchEnv('bench-lat', { ...deployment.env, QR_TTL_SECONDS: '600', ...opts.handoffEnv });
    const bareEnv = { REDIS_URL: redis.url, ADAPTER_KEY: uniquePrefix('bench-bare') + 'socket.io' };
    // Sequentially: both Handoff nodes seed the same users.
    const hA = await startServer('handoff-A', 'bench/servers/handoff.ts', handoffEnv);
    servers.push(hA);
    const hB = await startServer('handoff-B', 'bench/servers/handoff.ts', handoffEnv);
    servers.push(hB);
    const bA = await startServer('bare-A', 'bench/servers/bare-socketio.ts', bareEnv);
    servers.push(bA);
    const bB = await startServer('bare-B', 'bench/servers/bare-socketio.ts', bareEnv);
    servers.push(bB);
    log(`latency: servers up (handoff ${hA.url} ${hB.url} on ${deployment.topology} Redis, bare ${bA.url} ${bB.url}, redis ${redis.url})`);

    const waiters = new PushWaiters();
    const token = await login(hB.url, ANA);
    const createFlows = (count: number) => mapLimit(Array.from({ length: count }), 20, () => createQr(hA.url));

    // Handoff: one browser socket per flow on A (N measured + warm-up extras), phones on B.
    const warmFlows = await createFlows(opts.warmup);
    let flows = await createFlows(opts.flows);
    const browsers = await mapLimit([...flows, ...warmFlows], 50, async (flow) => {
      const s = await connectSocketIo(hA.url);
      sockets.push(s);
      s.on('state', (st: Pick<FlowState, 'id' | 'state'>) => waiters.arrived(`handoff|${st.id}|${st.state}`));
      await subscribe(s, flow);
      return s;
    });
    const warmBrowsers = browsers.splice(opts.flows);
    const phones = await mapLimit(Array.from({ length: opts.senders }), opts.senders, async () => {
      const s = await connectSocketIo(hB.url, { token });
      sockets.push(s);
      return s;
    });
    log(`  ${browsers.length} (+${warmBrowsers.length} warm-up) browser sockets subscribed on A, ${phones.length} phone sockets on B`);

    // Baseline: one client per room on bare A (rooms named like Handoff topics), triggers on bare B.
    const rooms = [...flows, ...warmFlows].map((f) => f.topic);
    const bareBrowsers = await mapLimit(rooms, 50, async (room) => {
      const s = await connectSocketIo(bA.url);
      sockets.push(s);
      s.on('state', (st: Pick<FlowState, 'id' | 'state'>) => waiters.arrived(`bare|${st.id}|${st.state}`));
      const res = await emitAck(s, 'join', { room });
      if (!res?.ok) throw new Error(`join failed: ${JSON.stringify(res)}`);
      return s;
    });
    const bareWarm = bareBrowsers.splice(opts.flows);
    const triggers = await mapLimit(Array.from({ length: opts.senders }), opts.senders, async () => {
      const s = await connectSocketIo(bB.url);
      sockets.push(s);
      return s;
    });
    log(`  ${bareBrowsers.length} (+${bareWarm.length} warm-up) bare sockets joined on A, ${triggers.length} trigger sockets on B`);

    // Baseline payload: a real Handoff state object of the same phase (same size on the wire).
    const template: Record<string, FlowState> = {};
    const handoffItem = (set: Flow[], action: 'scan' | 'confirm', state: string, i: number): Item => ({
      key: `handoff|${set[i].id}|${state}`,
      send: () =>
        emitAck(phones[i % phones.length], `qr:${action}`, { id: set[i].id }).then((a) => {
          if (a?.ok && a.state) template[state] ??= a.state;
          return a;
        }),
    });
    const bareItem = (set: Flow[], state: string, i: number): Item => ({
      key: `bare|${set[i].id}|${state}`,
      send: () =>
        emitAck(triggers[i % triggers.length], 'trigger', {
          room: rooms[i],
          state: { ...(template[state] ?? { kind: 'qr', version: 2, expiresAt: new Date().toISOString() }), topic: set[i].topic, id: set[i].id, state },
        }),
    });

    type Raw = { h: number[]; b: number[]; ha: number[]; ba: number[]; lostH: number; lostB: number };
    const rounds: Array<{ foreignCpu: number; data: Map<string, Raw> }> = [];
    async function phase(name: string, set: Flow[], action: 'scan' | 'confirm', state: string): Promise<Raw> {
      const raw: Raw = { h: [], b: [], ha: [], ba: [], lostH: 0, lostB: 0 };
      const indices = set.map((_, i) => i);
      for (const group of chunks(indices, opts.wave)) {
        const rh = await runWave(waiters, group.map((i) => handoffItem(set, action, state, i)));
        raw.h.push(...rh.latencies);
        raw.ha.push(...rh.acks);
        raw.lostH += rh.lost;
        await sleep(opts.gapMs);
        const rb = await runWave(waiters, group.map((i) => bareItem(set, state, i)));
        raw.b.push(...rb.latencies);
        raw.ba.push(...rb.acks);
        raw.lostB += rb.lost;
        await sleep(opts.gapMs);
      }
      return raw;
    }

    // Warm-up on extra flows (JIT, pools), then close their sockets so exactly `flows` flows are
    // subscribed while measuring.
    await phase('warm-up scan', warmFlows, 'scan', 'scanned');
    await phase('warm-up confirm', warmFlows, 'confirm', 'confirmed');
    for (const s of [...warmBrowsers, ...bareWarm]) s.close();
    const handoffAFds = fdCount(hA.pid);
    const setupMs = Date.now() - setupStarted;

    for (let round = 1; round <= opts.rounds; round++) {
      if (round > 1) {
        // Fresh flows for this round; each browser socket moves its one subscription to the new flow.
        const next = await createFlows(opts.flows);
        await mapLimit(browsers, 50, async (s, i) => {
          const res = await emitAck(s, 'unsubscribe', { topic: flows[i].topic });
          if (!res?.ok) throw new Error(`unsubscribe failed: ${JSON.stringify(res)}`);
          await subscribe(s, next[i]);
        });
        flows = next;
      }
      await sleep(500);
      const cpu0 = cpuSample();
      const started = Date.now();
      const data = new Map<string, Raw>();
      data.set(SCAN, await phase(SCAN, flows, 'scan', 'scanned'));
      data.set(CONFIRM, await phase(CONFIRM, flows, 'confirm', 'confirmed'));
      const foreign = foreignCpu(cpu0, cpuSample());
      rounds.push({ foreignCpu: foreign, data });
      const c = data.get(CONFIRM)!;
      log(
        `  round ${round}/${opts.rounds}: ${((Date.now() - started) / 1000).toFixed(0)} s, other processes used ${(foreign * 100).toFixed(0)}% of the CPU; ` +
          `confirm p50/p99 Handoff ${summarize(c.h).p50.toFixed(2)}/${summarize(c.h).p99.toFixed(2)}, bare ${summarize(c.b).p50.toFixed(2)}/${summarize(c.b).p99.toFixed(2)} ms`,
      );
    }

    const pool = (name: string, which: typeof rounds): LatencyPhase => {
      const acc: Raw = { h: [], b: [], ha: [], ba: [], lostH: 0, lostB: 0 };
      for (const r of which) {
        const d = r.data.get(name)!;
        acc.h.push(...d.h);
        acc.b.push(...d.b);
        acc.ha.push(...d.ha);
        acc.ba.push(...d.ba);
        acc.lostH += d.lostH;
        acc.lostB += d.lostB;
      }
      return {
        phase: name,
        handoff: summarize(acc.h),
        bare: summarize(acc.b),
        lostHandoff: acc.lostH,
        lostBare: acc.lostB,
        handoffAck: summarize(acc.ha),
        bareAck: summarize(acc.ba),
        roundP99: which.map((r) => [summarize(r.data.get(name)!.h).p99, summarize(r.data.get(name)!.b).p99] as [number, number]),
      };
    };
    const phases = [CONFIRM, SCAN].map((name) => pool(name, rounds));
    const quietRounds = rounds.filter((r) => r.foreignCpu < opts.quietCpu);
    const quiet = quietRounds.length > 0 ? [CONFIRM, SCAN].map((name) => pool(name, quietRounds)) : [];
    const perRound = rounds.map((r, i) => ({
      round: i + 1,
      foreignCpu: r.foreignCpu,
      phases: [CONFIRM, SCAN].map((name) => pool(name, [r])),
    }));
    const raw: LatencyResult['raw'] = {};
    for (const name of [CONFIRM, SCAN]) raw[name] = { handoff: rounds.flatMap((r) => r.data.get(name)!.h), bare: rounds.flatMap((r) => r.data.get(name)!.b) };
    return { options: opts, phases, quiet, quietRounds: quietRounds.length, perRound, handoffAFds, setupMs, raw };
  } finally {
    for (const s of sockets) s.close();
    await Promise.all(servers.map((s) => s.stop()));
    if (redis !== deployment.redis) await redis.stop();
    await deployment.stop();
  }
}
