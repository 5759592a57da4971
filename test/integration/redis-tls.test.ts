/**
 * Redis over TLS with a password: a private redis-server with `tls-port` only, its certificate
 * signed by a CA made for this test (openssl). REDIS_TLS_CA and REDIS_PASSWORD reach every
 * connection the node opens (store, fan-out, BullMQ) through the one connection factory.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/src/config.js';
import { createRedisConnection } from '../../server/src/store/redis-connection.js';
import { startInProcess } from '../harness/in-process.js';
import { exited, freePort, launch, uniquePrefix } from '../harness/redis-server.js';
import { TEST_SERVER_ENV } from '../harness/server-process.js';

const run = promisify(execFile);
const PASSWORD = 'tls-test-password';

let dir: string;
let server: ChildProcess;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'handoff-redis-tls-'));
  const f = (name: string) => join(dir, name);
  writeFileSync(f('san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=Handoff test CA']);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '1', '-extfile', f('san.cnf')]);
  port = await freePort();
  server = await launch(
    [
      '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--daemonize', 'no', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', '',
      '--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'no',
      '--requirepass', PASSWORD,
    ],
    null,
  );
}, 60_000);

afterAll(async () => {
  if (server) {
    server.kill('SIGTERM');
    await exited(server, 10_000);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_TLS_CA: join(dir, 'ca.crt'), REDIS_PASSWORD: PASSWORD });

describe('Redis over TLS with a password', () => {
  it('connects with REDIS_TLS_CA and REDIS_PASSWORD', async () => {
    const c = createRedisConnection(loadConfig(env()).redis!, 'cli');
    try {
      await c.connect();
      expect(await c.ping()).toBe('PONG');
    } finally {
      c.disconnect();
    }
  });

  it('refuses a server whose certificate no trusted CA signed (REDIS_TLS=true without the CA)', async () => {
    const { REDIS_TLS_CA: _ca, ...rest } = env();
    const c = createRedisConnection(loadConfig({ ...rest, REDIS_TLS: 'true' }).redis!, 'cli', { retryStrategy: () => null });
    const errors: string[] = [];
    c.on('error', (err: Error) => errors.push(err.message));
    try {
      await expect(c.connect()).rejects.toThrow();
      expect(errors.join('\n')).toMatch(/self[- ]signed|unable to verify|certificate/i);
    } finally {
      c.disconnect();
    }
  });

  it('is refused without the password', async () => {
    const { REDIS_PASSWORD: _pw, ...rest } = env();
    const c = createRedisConnection(loadConfig(rest).redis!, 'cli', { retryStrategy: () => null });
    const errors: string[] = [];
    c.on('error', (err: Error) => errors.push(err.message));
    try {
      // TLS is fine (the CA is there); the ready check's first command is refused.
      await expect(c.connect()).rejects.toThrow();
      expect(errors.join('\n')).toMatch(/NOAUTH/);
    } finally {
      c.disconnect();
    }
  });

  it('runs a whole node on it: store, fan-out and queues over TLS', async () => {
    const node = await startInProcess(loadConfig({ ...TEST_SERVER_ENV, ...env(), REDIS_PREFIX: uniquePrefix('tls') }));
    try {
      expect((await fetch(`${node.base}/readyz`)).status).toBe(200);
      const created = await fetch(`${node.base}/v1/qr`, { method: 'POST' });
      expect(created.status).toBe(201);
    } finally {
      await node.close();
    }
  });
});
