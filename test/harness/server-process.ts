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

/** Fixed test secret so every node of a cluster accepts every other node's JWTs. */
export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

/** What every test server runs with: a free port on loopback, cheap bcrypt, that secret, no demo user. */
export const TEST_SERVER_ENV = {
  PORT: '0',
  HOST: '127.0.0.1',
  BCRYPT_COST: '4',
  JWT_SECRET: TEST_JWT_SECRET,
  SEED_DEMO_USER: 'false',
} as const;

/**
 * Start `server/src/main.ts` in its own Node process (ROLE=worker: a worker process, no URL) (through tsx, sources straight from the
 * tree) on a free port, and resolve once it logs that it listens. Env defaults suit tests:
 * low bcrypt cost, quiet logs, no demo user.
 */
export async function startServerProcess(env: Record<string, string | undefined> = {}): Promise<ServerProcess> {
  const worker = env.ROLE === 'worker';
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'server/src/main.ts'],
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
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (worker && out.includes('handoff worker running')) return resolve('');
      const m = /handoff listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m) resolve(m[1]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
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
