/**
 * The built SDK: `client-sdk/scripts/build.mjs` writes the ESM, CJS and browser IIFE bundles to
 * client-sdk/dist, and each completes a QR login against a real server the way its consumers load
 * it (the IIFE in a vm with only browser-like globals: its `socket.io-client` is inside).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ANA, MODES, login, startCluster, type Cluster } from '../harness/cluster.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let cluster: Cluster;
let appToken: string;

beforeAll(async () => {
  await run(process.execPath, ['client-sdk/scripts/build.mjs'], { cwd: ROOT });
  cluster = await startCluster(MODES[0]);
  appToken = await login(cluster.phone, ANA);
});
afterAll(() => cluster?.stop());

it('builds the three bundles; the IIFE has socket.io-client inside and the ESM/CJS builds import it', () => {
  const iife = readFileSync(`${ROOT}client-sdk/dist/handoff.iife.js`, 'utf8');
  const esm = readFileSync(`${ROOT}client-sdk/dist/index.js`, 'utf8');
  const cjs = readFileSync(`${ROOT}client-sdk/dist/index.cjs`, 'utf8');
  expect(iife).not.toMatch(/\brequire\(|\bimport\s/);
  expect(esm).toMatch(/from "socket\.io-client"/);
  expect(cjs).toMatch(/require\("socket\.io-client"\)/);
  // @handoff/protocol is bundled, not imported.
  expect(esm + cjs).not.toMatch(/@handoff\/protocol/);
});

it('the ESM, CJS and IIFE builds each complete a QR login', { timeout: 60_000 }, async () => {
  const { stdout } = await run(process.execPath, ['test/sdk/fixtures/bundle-consumer.mjs', cluster.browser, appToken], { cwd: ROOT, timeout: 50_000 });
  const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
  expect(out.error).toBeUndefined();
  const expected = { email: ANA.email, states: ['pending', 'scanned', 'confirmed', 'redeemed'], transports: ['connecting', 'websocket', 'disconnected'] };
  expect(out.esm).toEqual(expected);
  expect(out.cjs).toEqual(expected);
  expect(out.iife).toEqual(expected);
  expect(out.cjsError).toBe('cancelled');
  expect(out.iifeStatics).toEqual(['HandoffError', 'SDK_ERRORS', 'DEFAULTS', 'TRANSPORT_CODES']);
});
