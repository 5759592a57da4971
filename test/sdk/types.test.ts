/**
 * The public types, checked by the TypeScript compiler: types.ok.ts and the README's examples
 * (client-sdk/examples/*.ts) compile; types.fail.ts fails, with an error on exactly its marked lines.
 * Both compilations start at once (beforeAll) to keep the file quick.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HERE = fileURLToPath(new URL('.', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const EXAMPLES = join(ROOT, 'client-sdk/examples');
const tmp = mkdtempSync(join(tmpdir(), 'handoff-sdk-types-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const OK_FILE = join(HERE, 'types.ok.ts');
const FAIL_FILE = join(HERE, 'types.fail.ts');
let ok: Promise<{ code: number; output: string }>;
let fail: Promise<{ code: number; output: string }>;
beforeAll(() => {
  const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith('.ts')).map((f) => join(EXAMPLES, f));
  ok = tsc('ok', [OK_FILE, ...examples]);
  fail = tsc('fail', [FAIL_FILE]);
});

/** Run tsc on `files` with test/sdk/tsconfig.types.json's settings; resolves with its exit code and output. */
function tsc(name: string, files: string[]): Promise<{ code: number; output: string }> {
  const config = join(tmp, `${name}.json`);
  writeFileSync(config, JSON.stringify({ extends: join(HERE, 'tsconfig.types.json'), files }));
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, '-p', config, '--pretty', 'false'], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
    });
  });
}

it('types.ok.ts and the README examples compile', { timeout: 60_000 }, async () => {
  expect(readdirSync(EXAMPLES).filter((f) => f.endsWith('.ts')).length).toBeGreaterThanOrEqual(3);
  const { code, output } = await ok;
  expect(output).toBe('');
  expect(code).toBe(0);
});

it('types.fail.ts does not compile, and fails on exactly its marked lines', { timeout: 60_000 }, async () => {
  const file = FAIL_FILE;
  const marked = readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line, i) => (/; \/\/ ✗/.test(line) ? [i + 1] : []));
  expect(marked.length).toBeGreaterThanOrEqual(15);

  const { code, output } = await fail;
  expect(code).not.toBe(0);
  const name = relative(ROOT, file);
  const errorLines = new Set(
    output
      .split('\n')
      .map((line) => new RegExp(`^${name.replace(/\./g, '\\.')}\\((\\d+),\\d+\\): error TS\\d+`).exec(line))
      .flatMap((m) => (m ? [Number(m[1])] : [])),
  );
  // Every error is in types.fail.ts (none in the SDK), and on a marked line.
  expect(output.split('\n').filter((l) => / error TS\d+/.test(l) && !l.startsWith(name))).toEqual([]);
  expect([...errorLines].sort((a, b) => a - b)).toEqual(marked);
});
