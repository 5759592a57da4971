/**
 * Test harness: the two highly available Redis topologies, from the machine's redis-server, on free
 * ports of 127.0.0.1 (never 6379), every process killed on stop() and when the test process ends.
 *
 *   const group = await startSentinelGroup();   // a master, one replica, three sentinels
 *   env.REDIS_SENTINELS = group.sentinels; env.REDIS_SENTINEL_MASTER = group.masterName;
 *   await group.killMaster();                    // SIGKILL the current master
 *   const { ms } = await group.waitForFailover(); // the replica promoted, as the sentinels see it
 *
 *   const cluster = await startRedisCluster();   // three masters, three replicas
 *   env.REDIS_CLUSTER_NODES = cluster.nodes;
 *   await cluster.killMaster(0); const { ms } = await cluster.waitForFailover();
 *   await cluster.reshard(100, 0, 1);            // move 100 slots (redis-cli --cluster reshard)
 *   await cluster.reshard({ slot: 1234 }, 0, 1); // move one given slot, its keys with it
 *
 * Timings are small on purpose (sentinel down-after 500 ms, cluster-node-timeout 1000 ms): a
 * failover takes about 1–3 s. Readiness is always waited for as an observed state (log line,
 * replication link up, sentinels that know each other, `cluster_state:ok` on every node), never a
 * fixed sleep.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { PortInUseError, exited, freePort, isRunning, launch, onProcessExit } from './redis-server.js';

const run = promisify(execFile);
const HOST = '127.0.0.1';
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? 'redis-cli';
const STOP_TIMEOUT_MS = 10_000;
/** Longest wait for a topology to come up or fail over (generous: the machine is shared). */
const READY_TIMEOUT_MS = 30_000;
const POLL_MS = 50;

export interface SentinelGroup {
  /** `127.0.0.1:<port>,…` of the three sentinels (REDIS_SENTINELS). */
  sentinels: string;
  /** The monitored master's name (REDIS_SENTINEL_MASTER). */
  masterName: string;
  /** `host:port` of the current master, as a majority of the sentinels report it. */
  masterAddress(): Promise<string>;
  /** SIGKILL the current master (no shutdown, no last replication) and note the time. */
  killMaster(): Promise<void>;
  /**
   * Resolve once a majority of the sentinels name another master than the one killed last and that
   * master answers ROLE as a master; `ms` counts from the kill.
   */
  waitForFailover(timeoutMs?: number): Promise<{ ms: number; master: string }>;
  /** Stop every process (SIGTERM, then SIGKILL) and remove the temp dir. */
  stop(): Promise<void>;
}

export interface RedisClusterHandle {
  /** `127.0.0.1:<port>,…` of the six nodes (REDIS_CLUSTER_NODES). */
  nodes: string;
  /** Node ids of the current masters ordered by their first slot (index 0 owns slot 0). */
  masters(): Promise<ClusterNodeInfo[]>;
  /** SIGKILL the master at `index` of masters() (default 0) and note the time. */
  killMaster(index?: number): Promise<ClusterNodeInfo>;
  /**
   * Resolve once another node owns every slot of the master killed last and every live node
   * reports `cluster_state:ok`; `ms` counts from the kill.
   */
  waitForFailover(timeoutMs?: number): Promise<{ ms: number }>;
  /**
   * Move slots from the master at index `from` to the master at index `to` (indices of masters()):
   * a count goes through `redis-cli --cluster reshard`; `{ slot }` moves that one slot, keys
   * included (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE, as redis-cli does).
   */
  reshard(slots: number | { slot: number }, from: number, to: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterNodeInfo {
  id: string;
  /** `127.0.0.1:<port>` */
  address: string;
  port: number;
  role: 'master' | 'replica';
  /** Slot ranges a master serves, inclusive. */
  slots: Array<[number, number]>;
}

/** One redis-server (or sentinel) process of a topology. */
interface Proc {
  port: number;
  child: ChildProcess;
}

/** True when nothing listens on `port` of 127.0.0.1 right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

/** A free port; with `bus`, port + 10000 (the cluster bus) is free too. */
async function pickPort(bus: boolean): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (!bus) return port;
    if (port + 10000 <= 65535 && (await portIsFree(port + 10000))) return port;
  }
}

/** Start one process on a fresh port (another one if the port was taken meanwhile). */
async function startProc(args: (port: number) => string[], opts: { bus?: boolean; readyLine?: string; dir?: string } = {}): Promise<Proc> {
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort(opts.bus ?? false);
    try {
      // The watchdog of every process also removes the topology's temp dir once the test process is gone.
      const child = await launch(args(port), opts.dir ?? null, opts.readyLine);
      return { port, child };
    } catch (err) {
      if (err instanceof PortInUseError && attempt < 10) continue;
      throw err;
    }
  }
}

async function stopProc(p: Proc): Promise<void> {
  if (!isRunning(p.child)) return;
  p.child.kill('SIGTERM');
  if (!(await exited(p.child, STOP_TIMEOUT_MS))) {
    p.child.kill('SIGKILL');
    await exited(p.child, STOP_TIMEOUT_MS);
  }
}

async function killProc(p: Proc): Promise<void> {
  if (!isRunning(p.child)) return;
  p.child.kill('SIGKILL');
  if (!(await exited(p.child, STOP_TIMEOUT_MS))) throw new Error(`redis-server on ${p.port} did not exit on SIGKILL`);
}

/** Poll `check` until it returns a value (not undefined); errors count as "not yet". */
async function waitUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = READY_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** A short-lived admin connection (no retries: a dead node fails the call at once). */
async function withConn<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ host: HOST, port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 2000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

/** `INFO <section>` as a map. */
function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** A flat [k, v, k, v…] reply as a map. */
function pairs(reply: unknown): Record<string, string> {
  const arr = reply as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < arr.length; i += 2) out[arr[i]!] = arr[i + 1]!;
  return out;
}

/**
 * A topology's temp dir and the list of its processes (push each one as it starts): `stop` stops
 * them all (SIGTERM, then SIGKILL) and removes the dir; if the test process ends first, they are
 * SIGKILLed and the dir removed then.
 */
function processGroup(prefix: string): { dir: string; procs: Proc[]; stop: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const procs: Proc[] = [];
  const unregister = onProcessExit(() => {
    for (const p of procs) if (isRunning(p.child)) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const stop = async () => {
    await Promise.all(procs.map(stopProc));
    rmSync(dir, { recursive: true, force: true });
    unregister();
  };
  return { dir, procs, stop };
}

const NO_PERSISTENCE = ['--save', '', '--appendonly', 'no'];

/** Start a master, one replica and three sentinels (quorum 2) watching them. */
export async function startSentinelGroup(opts: { masterName?: string; downAfterMs?: number; failoverTimeoutMs?: number } = {}): Promise<SentinelGroup> {
  const masterName = opts.masterName ?? 'handoff-master';
  const { dir, procs, stop } = processGroup('handoff-sentinel-');
  try {
    const serverArgs = (port: number, extra: string[] = []) => ['--port', String(port), '--bind', HOST, '--daemonize', 'no', '--dir', dir, '--logfile', '', ...NO_PERSISTENCE, ...extra];
    const master = await startProc((port) => serverArgs(port), { dir });
    procs.push(master);
    const replica = await startProc((port) => serverArgs(port, ['--replicaof', HOST, String(master.port)]), { dir });
    procs.push(replica);
    const sentinels: Proc[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await startProc(
        (port) => {
          // A sentinel rewrites its config file: one per sentinel, in the group's temp dir.
          const conf = join(dir, `sentinel-${i}-${port}.conf`);
          writeFileSync(
            conf,
            [
              `bind ${HOST}`,
              `dir ${dir}`,
              `sentinel monitor ${masterName} ${HOST} ${master.port} 2`,
              `sentinel down-after-milliseconds ${masterName} ${opts.downAfterMs ?? 500}`,
              `sentinel failover-timeout ${masterName} ${opts.failoverTimeoutMs ?? 3000}`,
              `sentinel parallel-syncs ${masterName} 1`,
              '',
            ].join('\n'),
          );
          return [conf, '--sentinel', '--port', String(port), '--logfile', ''];
        },
        { readyLine: 'Sentinel ID is', dir },
      );
      sentinels.push(s);
      procs.push(s);
    }

    // Ready: the replica replicates, and every sentinel knows the replica and the two other sentinels
    // (without that, a failover could not reach its quorum and majority).
    await waitUntil('the replica to sync', () =>
      withConn(replica.port, async (c) => (parseInfo(await c.info('replication')).master_link_status === 'up' ? true : undefined)),
    );
    await waitUntil('the sentinels to know each other and the replica', async () => {
      for (const s of sentinels) {
        const m = await withConn(s.port, async (c) => pairs(await c.call('SENTINEL', 'MASTER', masterName)));
        if (Number(m['num-other-sentinels']) < 2 || Number(m['num-slaves']) < 1) return undefined;
      }
      const replicas = await withConn(sentinels[0]!.port, async (c) => (await c.call('SENTINEL', 'REPLICAS', masterName)) as unknown[]);
      return replicas.map(pairs).some((r) => r.flags === 'slave' && r['master-link-status'] === 'ok') ? true : undefined;
    });

    const servers = [master, replica];
    let killed: { address: string; at: number } | null = null;

    const masterAddress = () =>
      waitUntil('a majority of sentinels to name the master', async () => {
        const seen = new Map<string, number>();
        for (const s of sentinels) {
          if (!isRunning(s.child)) continue;
          const addr = await withConn(s.port, async (c) => (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as string[] | null).catch(() => null);
          if (!addr) continue;
          const a = `${addr[0]}:${addr[1]}`;
          seen.set(a, (seen.get(a) ?? 0) + 1);
        }
        for (const [a, n] of seen) if (n >= 2) return a;
        return undefined;
      });

    return {
      sentinels: sentinels.map((s) => `${HOST}:${s.port}`).join(','),
      masterName,
      masterAddress,
      async killMaster() {
        const address = await masterAddress();
        const proc = servers.find((p) => `${HOST}:${p.port}` === address);
        if (!proc) throw new Error(`the sentinels name ${address}, which is none of this group's servers`);
        killed = { address, at: Date.now() };
        await killProc(proc);
      },
      async waitForFailover(timeoutMs = READY_TIMEOUT_MS) {
        const k = killed;
        if (!k) throw new Error('waitForFailover() before killMaster()');
        const master = await waitUntil(
          `a failover away from ${k.address}`,
          async () => {
            const a = await masterAddress();
            if (a === k.address) return undefined;
            const role = await withConn(Number(a.split(':')[1]), async (c) => ((await c.call('ROLE')) as unknown[])[0]);
            return role === 'master' ? a : undefined;
          },
          timeoutMs,
        );
        return { ms: Date.now() - k.at, master };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Parse CLUSTER NODES (live entries only: `fail` and `noaddr` ones are left out). */
function parseClusterNodes(text: string): ClusterNodeInfo[] {
  const out: ClusterNodeInfo[] = [];
  for (const line of text.trim().split('\n')) {
    const f = line.trim().split(' ');
    const flags = f[2]!.split(',');
    if (flags.includes('fail') || flags.includes('noaddr') || flags.includes('handshake')) continue;
    const address = f[1]!.split('@')[0]!;
    const slots: Array<[number, number]> = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue; // a slot being migrated
      const [a, b] = s.split('-');
      slots.push([Number(a), Number(b ?? a)]);
    }
    out.push({ id: f[0]!, address, port: Number(address.split(':')[1]), role: flags.includes('master') ? 'master' : 'replica', slots });
  }
  return out;
}

/**
 * Start three masters and three replicas and create the cluster (redis-cli --cluster create).
 * `replicasPerMaster: 0` starts the three masters alone (benchmarks: what the replicas cost; no failover).
 */
export async function startRedisCluster(opts: { nodeTimeoutMs?: number; replicasPerMaster?: 0 | 1 } = {}): Promise<RedisClusterHandle> {
  const replicasPerMaster = opts.replicasPerMaster ?? 1;
  const processes = 3 * (1 + replicasPerMaster);
  const { dir, procs, stop } = processGroup('handoff-cluster-');
  const live = () => procs.filter((p) => isRunning(p.child));
  const cli = async (args: string[]) => (await run(REDIS_CLI, args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 })).stdout;
  const nodesView = async (): Promise<ClusterNodeInfo[]> => {
    let lastErr: unknown;
    for (const p of live()) {
      try {
        return parseClusterNodes(await withConn(p.port, async (c) => String(await c.call('CLUSTER', 'NODES'))));
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr ?? new Error('no cluster node is running');
  };
  const masters = async () =>
    (await nodesView()).filter((n) => n.role === 'master' && n.slots.length > 0).sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);
  const allOk = async () => {
    for (const p of live()) {
      const info = parseInfo(await withConn(p.port, async (c) => String(await c.call('CLUSTER', 'INFO'))));
      if (info.cluster_state !== 'ok' || info.cluster_slots_ok !== '16384') return undefined;
    }
    return true;
  };

  try {
    for (let i = 0; i < processes; i++) {
      procs.push(
        await startProc(
          (port) => [
            '--port', String(port), '--bind', HOST, '--daemonize', 'no', '--dir', dir, '--logfile', '', ...NO_PERSISTENCE,
            '--cluster-enabled', 'yes',
            '--cluster-config-file', join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000),
            // A replica may take over however long it was cut off from its master (tests kill masters).
            '--cluster-replica-validity-factor', '0',
          ],
          { bus: true, dir },
        ),
      );
    }
    await cli(['--cluster', 'create', ...procs.map((p) => `${HOST}:${p.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes']);
    await waitUntil('cluster_state:ok on every node', async () => {
      if (!(await allOk())) return undefined;
      // Every node knows all the others, and every replica's link to its master is up (or a failover could not happen).
      for (const p of procs) {
        const info = parseInfo(await withConn(p.port, async (c) => String(await c.call('CLUSTER', 'INFO'))));
        if (info.cluster_known_nodes !== String(processes)) return undefined;
        const repl = parseInfo(await withConn(p.port, (c) => c.info('replication')));
        if (repl.role === 'slave' && repl.master_link_status !== 'up') return undefined;
      }
      return true;
    });

    let killed: { node: ClusterNodeInfo; at: number } | null = null;
    return {
      nodes: procs.map((p) => `${HOST}:${p.port}`).join(','),
      masters,
      async killMaster(index = 0) {
        const node = (await masters())[index];
        if (!node) throw new Error(`no master at index ${index}`);
        const proc = procs.find((p) => p.port === node.port)!;
        killed = { node, at: Date.now() };
        await killProc(proc);
        return node;
      },
      async waitForFailover(timeoutMs = READY_TIMEOUT_MS) {
        const k = killed;
        if (!k) throw new Error('waitForFailover() before killMaster()');
        await waitUntil(
          `a replica to take over from ${k.node.address}`,
          async () => {
            const owner = (await masters()).find((m) => m.slots.some(([a]) => a === k.node.slots[0]![0]));
            if (!owner || owner.id === k.node.id) return undefined;
            return allOk();
          },
          timeoutMs,
        );
        return { ms: Date.now() - k.at };
      },
      async reshard(slots, from, to) {
        const ms = await masters();
        const src = ms[from];
        const dst = ms[to];
        if (!src || !dst || src.id === dst.id) throw new Error(`reshard: no such pair of masters (${from} → ${to})`);
        if (typeof slots === 'number') {
          await cli(['--cluster', 'reshard', dst.address, '--cluster-from', src.id, '--cluster-to', dst.id, '--cluster-slots', String(slots), '--cluster-yes']);
        } else {
          await moveSlot(slots.slot, src, dst, live().map((p) => p.port));
        }
        await waitUntil('cluster_state:ok after the reshard', allOk);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Move one slot with its keys from `src` to `dst`, the way redis-cli --cluster reshard does. */
async function moveSlot(slot: number, src: ClusterNodeInfo, dst: ClusterNodeInfo, allPorts: number[]): Promise<void> {
  if (!src.slots.some(([a, b]) => slot >= a && slot <= b)) throw new Error(`slot ${slot} is not served by ${src.address}`);
  await withConn(dst.port, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', src.id));
  await withConn(src.port, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', dst.id));
  await withConn(src.port, async (c) => {
    for (;;) {
      const keys = (await c.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) break;
      await c.call('MIGRATE', HOST, dst.port, '', 0, 5000, 'REPLACE', 'KEYS', ...keys);
    }
  });
  // The new owner first, then the old one, then everyone else (as redis-cli does).
  await withConn(dst.port, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'NODE', dst.id));
  await withConn(src.port, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'NODE', dst.id));
  for (const port of allPorts) {
    if (port === src.port || port === dst.port) continue;
    await withConn(port, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'NODE', dst.id)).catch(() => {}); // replicas refuse; gossip tells them
  }
}
