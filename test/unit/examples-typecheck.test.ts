/** examples/acme is real code: it must type-check (it is not in the build's project references, it emits nothing). */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

it('examples/acme type-checks', async () => {
  const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [tsc, '-p', 'examples/acme', '--pretty', 'false'], { cwd: ROOT }).catch((err) => err);
  expect(stdout ?? '').toBe('');
}, 120_000);
