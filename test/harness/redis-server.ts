/**
 * Test harness: a real, private `redis-server` per call, on a free port on 127.0.0.1 (never 6379).
 *
 *   const redis = await startRedis();             // no persistence
 *   const aof = await startRedis({ appendonly: true }); // AOF, fsync always, in a temp dir
 *   await aof.kill();      // SIGKILL (an outage); kill('SIGSTOP') freezes it instead
 *   await aof.restart();   // same port and dir; with appendonly the data comes back
 *   await aof.stop();      // SIGTERM, waits for the exit
 *
 * Readiness is the "Ready to accept connections" log line, never a fixed sleep. Every server still
 * running when the test process ends is SIGKILLed (a watchdog shell per server, plus an `exit`
 * hook), and its AOF temp dir removed; the next startRedis also removes dirs of dead processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisHandle {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The running redis-server's pid (a new one after `restart`). */
  readonly pid: number;
  /** SIGTERM and wait for the exit. A no-op when it is not running. */
  stop(): Promise<void>;
  /**
   * Send `signal` (default SIGKILL) and wait for the exit. SIGSTOP/SIGTSTP freeze the server
   * instead (returns at once; `stop`, `restart` or `kill('SIGCONT')` undo it).
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and dir (stops it first if it is still running). */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /** AOF persistence with `appendfsync always` (default: no persistence at all). */
  appendonly?: boolean;
  /**
   * Working dir (AOF files). Default: with appendonly, a fresh temp dir kept across stop/restart and
   * removed at process exit (or by a later startRedis once this process is gone); else the temp dir.
   */
  dir?: string;
}

const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const READY_LINE = 'Ready to accept connections';
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const FORBIDDEN_PORT = 6379;
const DIR_PREFIX = 'handoff-redis-';

/**
 * Remove AOF dirs left by test processes that are gone. Vitest ends its workers without a process
 * `exit` event, so the exit hook below cannot be relied on for this.
 */
function removeOrphanDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A key prefix unique to this call, e.g. `t:flows:1a2b3c4d5e6f:`. */
export function uniquePrefix(name: string): string {
  return `t:${name}:${randomBytes(6).toString('hex')}:`;
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisHandle> {
  // Without persistence redis writes nothing (`--save ""`, no AOF), so the plain temp dir will do.
  // With AOF: a fresh dir per server, named after this process so later runs can remove it.
  const ownDir = opts.dir === undefined && opts.appendonly === true;
  if (ownDir) removeOrphanDirs();
  const dir = opts.dir ?? (ownDir ? mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`)) : tmpdir());
  const args = (port: number): string[] => [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--daemonize', 'no',
    '--save', '',
    '--dir', dir,
    '--logfile', '',
    ...(opts.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
  ];

  let child: ChildProcess | undefined;
  let paused = false;
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      child = await launch(args(port), ownDir ? dir : null);
      break;
    } catch (err) {
      // Someone took the port between our probe and redis binding it: pick another.
      if (err instanceof PortInUseError && attempt < 10) continue;
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  const cleanup = () => {
    if (child && isRunning(child)) child.kill('SIGKILL');
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  cleanups.add(cleanup);

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || !isRunning(c)) return;
    if (paused) {
      c.kill('SIGCONT');
      paused = false;
    }
    c.kill('SIGTERM');
    if (!(await exited(c, STOP_TIMEOUT_MS))) {
      c.kill('SIGKILL');
      await exited(c, STOP_TIMEOUT_MS);
    }
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child!.pid!;
    },
    stop,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const c = child;
      if (!c || !isRunning(c)) return;
      c.kill(signal);
      if (signal === 'SIGSTOP' || signal === 'SIGTSTP') {
        paused = true;
        return;
      }
      if (signal === 'SIGCONT') {
        paused = false;
        return;
      }
      if (!(await exited(c, STOP_TIMEOUT_MS))) throw new Error(`redis-server did not exit on ${signal}`);
    },
    async restart() {
      await stop();
      // The port was ours a moment ago; if it is briefly busy, retry rather than move.
      for (let attempt = 1; ; attempt++) {
        try {
          child = await launch(args(port), ownDir ? dir : null);
          return;
        } catch (err) {
          if (!(err instanceof PortInUseError) || attempt >= 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}

/** Everything to tear down if the test process exits with servers still running. */
const cleanups = new Set<() => void>();

/** Run `fn` (synchronously, best effort) when the test process exits; returns the unregister function. */
export function onProcessExit(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}
process.once('exit', () => {
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // best effort at exit
    }
  }
});

/** redis-server could not bind its port (someone took it after our probe): pick another. */
export class PortInUseError extends Error {}

/** True until `c` has exited. */
export function isRunning(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

/** Resolves true once `c` has exited, false after `timeoutMs`. */
export function exited(c: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!isRunning(c)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      c.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    c.once('exit', onExit);
  });
}

/**
 * A detached shell that SIGKILLs redis-server `pid` (and removes `cleanupDir`) once this test
 * process is gone, and quits by itself when the server exits first. Needed because vitest ends its
 * workers without a process `exit` event, so a test that never calls stop() would leak servers.
 */
function watchdog(pid: number, cleanupDir: string | null): void {
  const script = [
    'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done',
    'if ! kill -0 "$1" 2>/dev/null; then kill -9 "$2" 2>/dev/null; [ -n "$3" ] && rm -rf -- "$3"; fi',
  ].join('\n');
  const dog = spawn('sh', ['-c', script, 'redis-watchdog', String(process.pid), String(pid), cleanupDir ?? ''], {
    detached: true,
    stdio: 'ignore',
  });
  dog.on('error', () => {}); // best effort
  dog.unref();
}

/** A port the OS considers free right now (listen on 0, close); never 6379. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port > 0 && port !== FORBIDDEN_PORT) return port;
  }
}

/**
 * Spawn redis-server and resolve once it logs `readyLine` (default: that it accepts connections;
 * a sentinel logs its `Sentinel ID` instead). It is SIGKILLed when the test process is gone.
 */
export function launch(args: string[], cleanupDir: string | null, readyLine: string = READY_LINE): Promise<ChildProcess> {
  const portArg = args[args.indexOf('--port') + 1];
  if (Number(portArg) === FORBIDDEN_PORT) throw new Error('refusing to start redis on 6379');
  return new Promise((resolve, reject) => {
    const child = spawn(REDIS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // Never keep the test process alive just for the server; the exit hook kills it.
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    // Keep the last lines for error messages; keep draining the pipes for the server's whole life.
    const tail: string[] = [];
    let pending = '';
    let ready = false;
    const onData = (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (!ready && line.includes(readyLine)) {
          ready = true;
          clearTimeout(timer);
          child.off('exit', onEarlyExit);
          watchdog(child.pid!, cleanupDir);
          resolve(child);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      reject(err);
    };
    const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null) => {
      const log = tail.join('\n');
      const msg = `redis-server ${args.join(' ')} exited before ready (code ${code}, signal ${signal}):\n${log}`;
      fail(/Address already in use/i.test(log) ? new PortInUseError(msg) : new Error(msg));
    };
    child.once('exit', onEarlyExit);
    child.once('error', (err) => fail(new Error(`cannot spawn ${REDIS_BIN}: ${err.message}`)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`redis-server not ready after ${READY_TIMEOUT_MS} ms:\n${tail.join('\n')}`));
    }, READY_TIMEOUT_MS);
  });
}
