/**
 * Test harness for examples/acme: the example app in its own Node process (real SQLite file,
 * real HTTP), and the Handoff settings that put a cluster in front of it (contract §7).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Acme keeps its users in node:sqlite (Node >= 22.5; CI runs Node 24). Without it the Acme tests are skipped. */
export const HAS_NODE_SQLITE = await import('node:sqlite').then(
  () => true,
  () => false,
);
export const NO_SQLITE_REASON = `node:sqlite is missing in Node ${process.version}: the examples/acme tests are skipped (run them on Node 24, e.g. .ci/node/bin after bash .ci/run)`;

/** Acme's users in every test: login, password, display name. */
export const ACME_ANA = { login: 'ana', password: 'ana-acme-password', displayName: 'Ana Lima' };
export const ACME_BOB = { login: 'bob', password: 'bob-acme-password', displayName: 'Bob Stone' };

/** A running Acme process. */
export interface AcmeProcess {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Start examples/acme/src/main.ts with `env` on `port`; resolves once it listens. */
export async function startAcmeProcess(port: number, env: Record<string, string>): Promise<AcmeProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'examples/acme/src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, NODE_NO_WARNINGS: '1', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = once(child, 'exit');
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const m = /acme listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    exited.then(() => reject(new Error(`acme exited before listening:\n${out}`)));
  });
  return {
    url,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Everything an Acme + Handoff test setup shares: ports, secrets, keys, and the env of each side. */
export interface AcmeSetup {
  acmePort: number;
  /** Acme's origin as browsers open it (ALLOWED_ORIGINS on Handoff). */
  acmeUrl: string;
  /** Acme's SQLite file (kept across an Acme restart), in a temp dir removed by `cleanup()`. */
  dbPath: string;
  adminToken: string;
  apiKey: string;
  /** What every Handoff node runs with to sit in front of Acme. */
  handoffEnv: Record<string, string>;
  /** What Acme runs with, given the Handoff URL its browser page and backend use. */
  acmeEnv(handoffUrl: string): Record<string, string>;
  cleanup(): void;
}

/**
 * The settings for Acme on a free port and Handoff in front of it: ACCOUNTS=app with Acme's JWKS
 * (small cooldown and cache age, so rotation shows within a test), one ES256 assertion key on
 * every node, Acme's credentials endpoint, Acme's origin allowed, Acme's deep links in the QR code,
 * and a server-API key for Acme's backend.
 */
export async function acmeSetup(overrides: Record<string, string> = {}, opts: { host?: string } = {}): Promise<AcmeSetup> {
  const acmePort = await freePort();
  // Where browsers open Acme (its origin); Handoff reaches Acme's backend on 127.0.0.1 either way.
  const acmeUrl = `http://${opts.host ?? '127.0.0.1'}:${acmePort}`;
  const acmeBackend = `http://127.0.0.1:${acmePort}`;
  const acmeIssuer = 'https://acme.test';
  const dir = mkdtempSync(join(tmpdir(), 'acme-'));
  const credentialsSecret = `whsec_${randomBytes(32).toString('base64')}`;
  const adminToken = randomBytes(24).toString('base64url');
  const apiKey = randomBytes(32).toString('base64url');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const assertionIssuer = 'https://handoff.test';
  return {
    acmePort,
    acmeUrl,
    dbPath: join(dir, 'acme.sqlite'),
    adminToken,
    apiKey,
    handoffEnv: {
      ACCOUNTS: 'app',
      APP_JWKS_URL: `${acmeBackend}/.well-known/jwks.json`,
      APP_JWT_ISSUER: acmeIssuer,
      APP_JWT_AUDIENCE: 'acme-api',
      APP_JWKS_COOLDOWN_MS: '1000',
      APP_JWKS_CACHE_MAX_AGE_MS: '2000',
      ASSERTION_AUDIENCE: 'acme-web',
      ASSERTION_ISSUER: assertionIssuer,
      ASSERTION_SIGNING_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      CREDENTIALS_URL: `${acmeBackend}/handoff/credentials`,
      CREDENTIALS_SECRET: credentialsSecret,
      CREDENTIALS_TIMEOUT_MS: '2000',
      ALLOWED_ORIGINS: acmeUrl,
      QR_PAYLOAD_URL: 'acme://login/{id}',
      API_KEYS: `acme:${apiKey}`,
      LOGIN_IP_PER_MINUTE: '100000',
      LOGIN_MAX_FAILURES: '1000',
      ...overrides,
    },
    acmeEnv: (handoffUrl) => ({
      HANDOFF_URL: handoffUrl,
      ACME_PUBLIC_URL: acmeUrl,
      ACME_ISSUER: acmeIssuer,
      HANDOFF_ASSERTION_ISSUER: assertionIssuer,
      ACME_ASSERTION_AUDIENCE: 'acme-web',
      ACME_DB: join(dir, 'acme.sqlite'),
      ACME_CREDENTIALS_SECRET: credentialsSecret,
      ACME_ADMIN_TOKEN: adminToken,
      HANDOFF_API_KEY: apiKey,
      ACME_SEED_USERS: [ACME_ANA, ACME_BOB].map((u) => `${u.login}:${u.password}:${u.displayName}`).join(','),
    }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
