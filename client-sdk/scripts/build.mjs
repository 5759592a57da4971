// Builds the SDK's bundles with esbuild, and with --types its declarations:
//   dist/index.js          ESM, for bundlers and Node (socket.io-client external: a dependency)
//   dist/index.cjs         CommonJS, same contents
//   dist/handoff.iife.js   browser <script>: global `Handoff`, socket.io-client bundled in, minified
//   dist/index.d.ts        --types: every declaration in one file, @handoff/protocol's inlined (the
//   dist/index.d.cts         protocol is not published: its code and its types are bundled in);
//                            the .d.cts is the same file, typed as CommonJS for `require`
//   dist/handoff.iife.d.ts --types: the global `Handoff` that the IIFE defines
//   dist/server.js         `@handoff/client-sdk/server` (src/server.ts, Node only), ESM (jose external: a dependency)
//   dist/server.cjs        the same, CommonJS, with jose bundled in (jose is ESM only, and require() of
//                            ESM needs Node >= 22.12; the package supports Node >= 22)
//   dist/server.d.ts       --types: its declarations (.d.cts the same file, typed as CommonJS)
// @handoff/protocol is bundled into all three bundles (its sources, through the `source` condition).
// --types reads the declarations `tsc -b` wrote to client-sdk/build/types (run it first).
//
// What a running server serves (dist/handoff.iife.js) is never rewritten in place: a file whose
// contents did not change is not touched at all, and a changed one is written beside it and renamed
// over it, so a reader gets the old file or the new one, whole, never a partial one.
//
//   node scripts/build.mjs [--outdir <dir>] [--types]
import { build } from 'esbuild';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--outdir');
const outdir = i > 0 ? resolve(process.argv[i + 1]) : resolve(root, 'dist');
const withTypes = process.argv.includes('--types');

/**
 * The global the IIFE bundle defines (src/browser.ts): the Handoff class with the rest of the SDK on
 * it. One file for every consumer: a script's global is neither ESM nor CommonJS (and its type-only
 * import of the ESM declarations is allowed from both).
 */
const IIFE_DTS = `// The global \`Handoff\` that dist/handoff.iife.js defines (src/browser.ts): the client class, with
// the rest of the SDK on it as static members. In TypeScript:
//   /// <reference types="@handoff/client-sdk/handoff.iife.js" />
import type * as sdk from './index.js';

declare global {
  /** The Handoff client class, with \`HandoffError\`, \`SDK_ERRORS\`, \`DEFAULTS\`, … as static members. */
  var Handoff: typeof sdk.Handoff & Omit<typeof sdk, 'Handoff'>;
  /** A Handoff client (an instance of the global \`Handoff\`). */
  type Handoff = sdk.Handoff;
}

export {};
`;

const common = {
  absWorkingDir: root,
  bundle: true,
  sourcemap: true,
  conditions: ['source'],
  logLevel: 'warning',
  legalComments: 'linked',
  write: false,
};

const results = await Promise.all([
  build({
    ...common,
    entryPoints: ['src/index.ts'],
    outfile: resolve(outdir, 'index.js'),
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    target: 'es2020',
    external: ['socket.io-client'],
  }),
  build({
    ...common,
    entryPoints: ['src/index.ts'],
    outfile: resolve(outdir, 'index.cjs'),
    format: 'cjs',
    platform: 'node',
    target: 'es2020',
    external: ['socket.io-client'],
  }),
  build({
    ...common,
    entryPoints: ['src/server.ts'],
    outfile: resolve(outdir, 'server.js'),
    format: 'esm',
    platform: 'node',
    target: 'node22',
    external: ['jose'],
  }),
  build({
    ...common,
    entryPoints: ['src/server.ts'],
    outfile: resolve(outdir, 'server.cjs'),
    format: 'cjs',
    platform: 'node',
    target: 'node22',
  }),
  build({
    ...common,
    entryPoints: ['src/browser.ts'],
    outfile: resolve(outdir, 'handoff.iife.js'),
    format: 'iife',
    platform: 'browser',
    target: 'es2019',
    minify: true,
  }),
]);

/** Output path → contents. */
const outputs = new Map(results.flatMap((r) => r.outputFiles.map((f) => [f.path, f.contents])));

if (withTypes) {
  const dts = bundleDeclarations('index');
  outputs.set(resolve(outdir, 'index.d.ts'), dts);
  outputs.set(resolve(outdir, 'index.d.cts'), dts);
  const serverDts = bundleDeclarations('server');
  outputs.set(resolve(outdir, 'server.d.ts'), serverDts);
  outputs.set(resolve(outdir, 'server.d.cts'), serverDts);
  outputs.set(resolve(outdir, 'handoff.iife.d.ts'), IIFE_DTS);
}

await mkdir(outdir, { recursive: true });
let written = 0;
for (const [path, contents] of outputs) {
  if (await writeIfChanged(path, contents)) written++;
}
console.log(`client-sdk: ${written} of ${outputs.size} files written to ${relative(process.cwd(), outdir) || '.'} (the rest unchanged)`);

/**
 * Write `contents` to `path` unless it already holds exactly that; a new version goes to a temp
 * file in the same folder first and is renamed over `path` (atomic on POSIX file systems).
 */
async function writeIfChanged(path, contents) {
  const old = await readFile(path).catch(() => null);
  const bytes = typeof contents === 'string' ? Buffer.from(contents) : contents;
  if (old && Buffer.compare(old, bytes) === 0) return false;
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return true;
}

/**
 * One declaration file from tsc's output (build/types/<entry>.d.ts), with @handoff/protocol's
 * declarations inlined and only what src/<entry>.ts exports exported (dts-bundle-generator).
 */
function bundleDeclarations(entry) {
  const require = createRequire(import.meta.url);
  const { generateDtsBundle } = require('dts-bundle-generator');
  const filePath = resolve(root, `build/types/${entry}.d.ts`);
  const [text] = generateDtsBundle(
    [{ filePath, libraries: { inlinedLibraries: ['@handoff/protocol'] }, output: { noBanner: true, exportReferencedTypes: false } }],
    { preferredConfigPath: resolve(root, 'scripts/tsconfig.dts.json') },
  );
  if (/@handoff\/protocol/.test(text)) throw new Error(`client-sdk: the bundled declarations of ${entry} still import @handoff/protocol`);
  const what = entry === 'index' ? 'every type declaration in one file (the wire protocol\'s types inlined)' : `the declarations of @handoff/client-sdk/${entry}`;
  return `// @handoff/client-sdk: ${what}.\n${text}`;
}
