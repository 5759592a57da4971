/**
 * The SDK as npm would publish it: `npm run build -w client-sdk`, then `npm pack`, then the packed
 * tarball checked the way a consumer meets it — its file list, publint (strict), Are the Types
 * Wrong (every entrypoint under node10, node16 CJS and ESM, and bundler resolution), the
 * TypeScript compiler in a project that has only the tarball and its dependencies (socket.io-client,
 * jose) installed, and Node loading `@handoff/client-sdk/server` there with import and require.
 * Both tools run offline, on the tarball.
 */
import { checkPackage, createPackageFromTarballData, type Problem } from '@arethetypeswrong/core';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, beforeAll, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SDK = join(ROOT, 'client-sdk');
const tmp = mkdtempSync(join(tmpdir(), 'handoff-sdk-pack-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let tarballPath: string;
let tarball: Buffer;
let packed: string[];

beforeAll(async () => {
  await run('npm', ['run', 'build', '-w', 'client-sdk'], { cwd: ROOT, timeout: 170_000 });
  // --ignore-scripts: prepack would build again; it was built just above.
  const { stdout } = await run('npm', ['pack', '-w', 'client-sdk', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT });
  const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
  tarballPath = join(tmp, info.filename);
  tarball = readFileSync(tarballPath);
  packed = info.files.map((f) => f.path).sort();
}, 180_000);

it('ships the bundles (the client and the server helper), one declaration file per format, the licence and the readme, and nothing else', () => {
  expect(packed).toEqual([
    'LICENSE',
    'README.md',
    'dist/handoff.iife.d.ts',
    'dist/handoff.iife.js',
    'dist/handoff.iife.js.map',
    'dist/index.cjs',
    'dist/index.cjs.map',
    'dist/index.d.cts',
    'dist/index.d.ts',
    'dist/index.js',
    'dist/index.js.map',
    'dist/server.cjs',
    'dist/server.cjs.map',
    'dist/server.d.cts',
    'dist/server.d.ts',
    'dist/server.js',
    'dist/server.js.map',
    'package.json',
  ]);
  expect(readFileSync(join(SDK, 'LICENSE'), 'utf8')).toBe(readFileSync(join(ROOT, 'LICENSE'), 'utf8'));
});

it('needs nothing unpublished: the protocol types are inlined, and the dependencies are socket.io-client and jose (the server helper)', () => {
  const pkg = JSON.parse(readFileSync(join(SDK, 'package.json'), 'utf8'));
  expect(Object.keys(pkg.dependencies)).toEqual(['jose', 'socket.io-client']);
  expect(pkg).toMatchObject({ license: 'MIT', repository: { directory: 'client-sdk' } });
  for (const file of ['index.d.ts', 'index.d.cts', 'handoff.iife.d.ts', 'server.d.ts', 'server.d.cts']) {
    expect(readFileSync(join(SDK, 'dist', file), 'utf8'), file).not.toMatch(/@handoff\/protocol|sourceMappingURL/);
  }
});

it('publint finds nothing, warnings and suggestions included', async () => {
  const { messages, pkg } = await publint({ pack: { tarball: new Uint8Array(tarball).buffer }, strict: true, level: 'suggestion' });
  expect(messages.map((m) => `${m.type}: ${formatMessage(m, pkg) ?? m.code}`)).toEqual([]);
});

it('Are the Types Wrong finds no problem in any entrypoint under any resolution', async () => {
  const result = await checkPackage(createPackageFromTarballData(new Uint8Array(tarball)));
  expect(result.types).not.toBe(false);
  if (result.types === false) return;
  expect(Object.keys(result.entrypoints).sort()).toEqual(['.', './handoff.iife.js', './package.json', './server']);
  // The one accepted finding: `require('@handoff/client-sdk/handoff.iife.js')` resolves to a .js
  // file of a "type": "module" package. That file is a classic browser script (it sets the global
  // `Handoff`), never a module for Node to load; the subpath exists for its types and for bundlers.
  const accepted = (p: Problem) => p.kind === 'CJSResolvesToESM' && 'entrypoint' in p && p.entrypoint === './handoff.iife.js';
  expect(result.problems.filter((p) => !accepted(p))).toEqual([]);
});

/** A project with the tarball unpacked in node_modules and the dependencies linked; made once. */
let consumer: Promise<string> | undefined;
function consumerProject(): Promise<string> {
  consumer ??= (async () => {
    const app = join(tmp, 'consumer');
    const installed = join(app, 'node_modules/@handoff/client-sdk');
    mkdirSync(installed, { recursive: true });
    await run('tar', ['-xzf', tarballPath, '-C', installed, '--strip-components=1']);
    for (const dep of ['socket.io-client', 'jose']) symlinkSync(join(ROOT, 'node_modules', dep), join(app, 'node_modules', dep));
    return app;
  })();
  return consumer;
}

it('a TypeScript project with only the tarball installed compiles against each entry: import, require and the IIFE global', { timeout: 120_000 }, async () => {
  const app = await consumerProject();
  const files: Record<string, string> = {
    'esm.mts': [
      "import { Handoff, HandoffError, isHandoffError, QR_STATES, type FlowState, type ErrorCode } from '@handoff/client-sdk';",
      "const client: Handoff = new Handoff({ url: 'https://login.example' });",
      "const state: FlowState['state'] = QR_STATES[0];",
      "const code: ErrorCode = 'not_found';",
      'export const checks = [client, state, code, isHandoffError(new Error()), HandoffError];',
    ].join('\n'),
    'cjs.cts': [
      "import sdk = require('@handoff/client-sdk');",
      "const client: sdk.Handoff = new sdk.Handoff({ url: 'https://login.example' });",
      "const state: sdk.FlowState['state'] = sdk.QR_STATES[0];",
      'export = [client, state, sdk.SDK_ERRORS];',
    ].join('\n'),
    // A plain script (CommonJS mode here), as a page that loads /sdk/handoff.iife.js would be typed.
    'iife.ts': [
      '/// <reference types="@handoff/client-sdk/handoff.iife.js" />',
      'const browserClient: Handoff = new Handoff({ url: location.origin });',
      'const timeout: number = Handoff.DEFAULTS.requestTimeout;',
      "const known: boolean = Handoff.isHandoffError(new Error(), 'timeout') || browserClient instanceof Handoff;",
      'void [timeout, known, Handoff.HandoffError, Handoff.SDK_ERRORS];',
    ].join('\n'),
    'server-esm.mts': [
      "import { AssertionError, createMemoryJtiStore, verifyAssertion, type HandoffAssertion, type VerifyAssertionOptions } from '@handoff/client-sdk/server';",
      "const options: VerifyAssertionOptions = { jwksUrl: new URL('https://login.example/.well-known/jwks.json'), issuer: 'https://login.example', audience: 'acme', seen: createMemoryJtiStore() };",
      'export async function check(token: string): Promise<string> {',
      '  try {',
      '    const user: HandoffAssertion = await verifyAssertion(token, options);',
      '    return user.sub;',
      '  } catch (err) {',
      "    if (err instanceof AssertionError && err.code === 'replayed') return 'replayed';",
      '    throw err;',
      '  }',
      '}',
    ].join('\n'),
    'server-cjs.cts': [
      "import server = require('@handoff/client-sdk/server');",
      "const code: server.AssertionErrorCode = new server.AssertionError('expired', 'late').code;",
      "const seen: (jti: string, exp: number) => boolean = server.createMemoryJtiStore();",
      "export = [code, seen, server.verifyAssertion('t', { jwksUrl: 'https://login.example/jwks', issuer: 'i', audience: 'a' })];",
    ].join('\n'),
    'iife-esm.mts': [
      '/// <reference types="@handoff/client-sdk/handoff.iife.js" />',
      'export const esmClient: Handoff = new Handoff({ url: location.origin });',
    ].join('\n'),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(app, name), `${text}\n`);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], strict: true, noEmit: true, types: [], skipLibCheck: false },
      files: Object.keys(files),
    }),
  );
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const out = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json'), '--pretty', 'false'], { cwd: app }).then(
    (r) => r.stdout + r.stderr,
    (err: { stdout?: string; stderr?: string; message: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}` || err.message,
  );
  expect(out).toBe('');
});

it('Node loads @handoff/client-sdk/server from the tarball with import and with require, and both refuse a bad token as `invalid`', { timeout: 60_000 }, async () => {
  const app = await consumerProject();
  const check = (load: string) =>
    `${load}.then(async (m) => { const err = await m.verifyAssertion('x', { jwksUrl: 'http://127.0.0.1:9/jwks.json', issuer: 'i', audience: 'a' }).catch((e) => e); console.log(Object.keys(m).sort().join(','), err.name, err.code, m.createMemoryJtiStore()('j', 1e12)); })`;
  const esm = await run(process.execPath, ['--input-type=module', '-e', check("import('@handoff/client-sdk/server')")], { cwd: app });
  const cjs = await run(process.execPath, ['--input-type=commonjs', '-e', check("Promise.resolve(require('@handoff/client-sdk/server'))")], { cwd: app });
  for (const out of [esm.stdout, cjs.stdout]) expect(out.trim()).toBe('AssertionError,createMemoryJtiStore,verifyAssertion AssertionError invalid false');
});
