/** Child processes of the bench: servers (with the IPC control channel) and client holders. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/harness/redis-server.js';
import type { MemReport } from '../servers/ipc.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const children = new Set<ChildProcess>();
/** SIGKILL every child still running (bench exit, watchdog). */
export function killAllChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.once('exit', killAllChildren);

export interface NodeChild {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Last lines it printed. */
  tail(): string;
  /** Send an IPC message and resolve with the first reply of `type` (bounded by `timeoutMs`). */
  request<T = any>(msg: object, type: string, timeoutMs?: number): Promise<T>;
  /** Next IPC message of `type`. */
  next<T = any>(type: string, timeoutMs?: number): Promise<T>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Start `node [execArgv] --conditions=source --import tsx <script>` from the repo root with an
 * IPC channel. Output is drained (only a short tail is kept). With `nofile`, the process may hold
 * at most that many open files (`ulimit -n` in a bash that then execs node: same pid).
 */
export function spawnNode(name: string, script: string, env: Record<string, string | undefined>, execArgv: string[] = [], opts: { nofile?: number } = {}): NodeChild {
  const args = [...execArgv, '--conditions=source', '--import', 'tsx', script];
  const [cmd, argv] = opts.nofile ? ['bash', ['-c', `ulimit -n ${Math.floor(opts.nofile)} && exec "$0" "$@"`, process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  children.add(child);
  const lines: string[] = [];
  // BENCH_LOG_DIR=<dir>: also keep everything each child prints, in <dir>/<name>.log.
  const logFile = process.env.BENCH_LOG_DIR ? createWriteStream(join(process.env.BENCH_LOG_DIR, `${name.replace(/[^\w.-]+/g, '_')}-${process.pid}-${child.pid}.log`)) : null;
  const onData = (chunk: Buffer) => {
    logFile?.write(chunk);
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      lines.push(line.slice(0, 500));
      if (lines.length > 30) lines.shift();
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tail = () => lines.join('\n');

  const next = <T>(type: string, timeoutMs = 30_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onMsg = (m: any) => {
        if (m?.type !== type) return;
        done();
        resolve(m as T);
      };
      const onExit = (code: number | null, sig: string | null) => {
        done();
        reject(new Error(`${name} exited (${code ?? sig}) while waiting for '${type}':\n${tail()}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${name}: no '${type}' after ${timeoutMs} ms:\n${tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        child.off('message', onMsg);
        child.off('exit', onExit);
      };
      child.on('message', onMsg);
      child.once('exit', onExit);
    });

  return {
    name,
    child,
    pid: child.pid!,
    tail,
    next,
    request<T>(msg: object, type: string, timeoutMs?: number) {
      const p = next<T>(type, timeoutMs);
      child.send(msg);
      return p;
    },
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
      children.delete(child);
    },
  };
}

export interface ServerChild extends NodeChild {
  url: string;
  /** Forced GC in the server, then its memoryUsage() and VmRSS. */
  mem(): Promise<MemReport>;
}

/** Start one of bench/servers/*.ts (with --expose-gc) and wait for its `ready`. */
export async function startServer(
  name: string,
  script: string,
  env: Record<string, string | undefined>,
  opts: { execArgv?: string[]; timeoutMs?: number; nofile?: number } = {},
): Promise<ServerChild> {
  const port = await freePort();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  // BENCH_SERVER_NODE_FLAGS: extra node flags for every server (diagnostics, e.g. --trace-gc or --cpu-prof).
  const extra = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const c = spawnNode(name, script, { PORT: String(port), HOST: '127.0.0.1', ...env }, ['--expose-gc', ...(opts.execArgv ?? []), ...extra], { nofile: opts.nofile });
  let ready: { url: string };
  try {
    ready = await c.next<{ url: string }>('ready', timeoutMs);
  } catch (err) {
    await c.stop(1000);
    throw err;
  }
  return { ...c, url: ready.url, mem: () => c.request<MemReport>({ type: 'mem' }, 'mem', 30_000) };
}

/** VmRSS of a process from /proc, bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Open file descriptors of a process (counted from /proc/<pid>/fd). */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The fields of a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` file after the command
 * name (which may hold spaces): [0] = state (field 3), [1] = ppid, [11] + [12] = utime + stime
 * in USER_HZ (100 per second), [16] = nice. Null when the process or thread is gone.
 */
export function procStat(path: string): string[] | null {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) in the fields procStat returns. */
export const cpuSecondsOf = (f: string[]) => (Number(f[11]) + Number(f[12])) / 100;

/** CPU seconds (user + system) of a process and all its descendants, from /proc. */
export function treeCpu(root: number): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = procStat(`/proc/${d}/stat`);
    if (!f) continue;
    parent.set(Number(d), Number(f[1]));
    cpu.set(Number(d), cpuSecondsOf(f));
  }
  let sum = 0;
  for (const [pid, s] of cpu) {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) {
      if (p === root) {
        sum += s;
        break;
      }
    }
  }
  return sum;
}

/** CPU counters (USER_HZ ticks): the whole machine, and this process with all its descendants. */
export interface CpuSample {
  all: number;
  busy: number;
  mine: number;
}

export function cpuSample(): CpuSample {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const all = ticks.reduce((a, b) => a + b, 0);
  const busy = all - ticks[3] - ticks[4]; // minus idle and iowait
  const parent = new Map<number, number>();
  const used = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = procStat(`/proc/${d}/stat`);
    if (!f) continue; // gone meanwhile
    parent.set(Number(d), Number(f[1]));
    used.set(Number(d), Number(f[11]) + Number(f[12])); // utime + stime, ticks
  }
  let mine = 0;
  for (const [pid, ticks] of used) {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) {
      if (p === process.pid) {
        mine += ticks;
        break;
      }
    }
  }
  return { all, busy, mine };
}

/** Share of the machine's CPU (0..1, all cores) used by processes that are not ours between two samples. */
export function foreignCpu(a: CpuSample, b: CpuSample): number {
  const all = b.all - a.all;
  return all > 0 ? Math.max(0, (b.busy - a.busy - (b.mine - a.mine)) / all) : 0;
}
