/** examples/acme and bench/ are real code: they must type-check (they are not in the build's project references, they emit nothing). */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

it.each(['examples/acme', 'bench'])('%s type-checks', async (project) => {
  const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [tsc, '-p', project, '--pretty', 'false'], { cwd: ROOT }).catch((err) => err);
  expect(stdout ?? '').toBe('');
}, 120_000);
