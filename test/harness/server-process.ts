import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A real Handoff server process. */
export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything it printed, for debugging failed tests. */
  output(): string;
  /** SIGTERM and wait for exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL at once. */
  kill(): Promise<void>;
}

/**
 * Extra Node flags for every server process, from SERVER_NODE_ARGS (space-separated), e.g.
 * `SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` to profile servers under a bench
 * (`--cpu-prof` is not allowed in NODE_OPTIONS).
 */
function nodeArgs(): string[] {
  return (process.env.SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

/** Fixed test secret so every node of a cluster accepts every other node's JWTs. */
export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

/**
 * What every test server runs with: a free port on loopback, cheap bcrypt, that secret, no demo
 * user, and no per-IP limit on creating QR flows (every test client is 127.0.0.1; the limit's own
 * tests set QR_IP_PER_MINUTE).
 */
export const TEST_SERVER_ENV = {
  PORT: '0',
  HOST: '127.0.0.1',
  BCRYPT_COST: '4',
  JWT_SECRET: TEST_JWT_SECRET,
  SEED_DEMO_USER: 'false',
  QR_IP_PER_MINUTE: '0',
} as const;

/**
 * Start `server/src/main.ts` in its own Node process (ROLE=worker: a worker process, no URL) (through tsx, sources straight from the
 * tree; `built`: the compiled `server/dist/main.js`, as `npm start` runs it) on a free port, and
 * resolve once it logs that it listens. Env defaults suit tests: low bcrypt cost, quiet logs, no
 * demo user.
 */
export async function startServerProcess(
  env: Record<string, string | undefined> = {},
  opts: { built?: boolean } = {},
): Promise<ServerProcess> {
  const worker = env.ROLE === 'worker';
  const entry = opts.built ? ['server/dist/main.js'] : ['--conditions=source', '--import', 'tsx', 'server/src/main.ts'];
  const child = spawn(
    process.execPath,
    [...nodeArgs(), ...entry],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...TEST_SERVER_ENV,
        LOG_LEVEL: 'info',
        NODE_ENV: 'test',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    // Look for the start line only until it is found: matching the whole, growing output on every
    // chunk of a busy server's log would cost the test (or bench) process O(n²) CPU.
    const onData = () => {
      const m = worker ? /handoff worker running/.exec(out) : /handoff listening on (http:\/\/[^\s"]+)/.exec(out);
      if (!m) return;
      child.stdout!.off('data', onData);
      resolve(m[1] ?? '');
    };
    child.stdout!.on('data', onData);
    exited.then(([code]) => reject(new Error(`server exited (${code}) before listening:\n${out}`)));
  });
  return {
    url,
    port: url ? Number(new URL(url).port) : 0,
    child,
    output: () => out,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const [code] = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
