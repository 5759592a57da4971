/**
 * `client-sdk/scripts/build.mjs` (run by `npm start`, `npm run worker` and `npm run build`) never
 * rewrites what a running server serves: an unchanged bundle is not touched at all, and a changed
 * one is swapped in whole, so a reader never sees a partial file.
 */
import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const outdir = mkdtempSync(join(tmpdir(), 'handoff-sdk-build-'));
const bundle = join(outdir, 'handoff.iife.js');
const build = () => run(process.execPath, ['client-sdk/scripts/build.mjs', '--outdir', outdir], { cwd: ROOT, timeout: 60_000 });
let built: Buffer;

beforeAll(async () => {
  await build();
  built = readFileSync(bundle);
}, 90_000);
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

it('a second build with unchanged sources writes nothing: same file, same modification time', { timeout: 90_000 }, async () => {
  const before = statSync(bundle);
  const { stdout } = await build();
  const after = statSync(bundle);
  expect(after.ino).toBe(before.ino);
  expect(after.mtimeMs).toBe(before.mtimeMs);
  expect(stdout).toMatch(/client-sdk: 0 of \d+ files written/);
});

it('a changed bundle is swapped in whole: a reader that opened the old one still reads all of it', { timeout: 90_000 }, async () => {
  const old = Buffer.from('/* the bundle a running server was serving */\n'.repeat(2000));
  writeFileSync(bundle, old);
  const fd = openSync(bundle, 'r'); // a request that is reading the file while the build runs
  try {
    await build();
    const seen = Buffer.alloc(old.length + 1024);
    const n = readSync(fd, seen, 0, seen.length, 0);
    expect(seen.subarray(0, n).equals(old)).toBe(true);
  } finally {
    closeSync(fd);
  }
  expect(readFileSync(bundle).equals(built)).toBe(true); // new readers get the whole new bundle
});
