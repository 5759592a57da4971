// Builds the SDK's bundles with esbuild (type declarations come from `tsc -b`, see package.json):
//   dist/index.js         ESM, for bundlers and Node (socket.io-client external: a dependency)
//   dist/index.cjs        CommonJS, same contents
//   dist/handoff.iife.js  browser <script>: global `Handoff`, socket.io-client bundled in, minified
// @handoff/protocol is bundled into all three (its sources, through the `source` condition).
//
//   node scripts/build.mjs [--outdir <dir>]
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--outdir');
const outdir = i > 0 ? resolve(process.argv[i + 1]) : resolve(root, 'dist');

const common = {
  absWorkingDir: root,
  bundle: true,
  sourcemap: true,
  conditions: ['source'],
  logLevel: 'warning',
  legalComments: 'linked',
};

await Promise.all([
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
    entryPoints: ['src/browser.ts'],
    outfile: resolve(outdir, 'handoff.iife.js'),
    format: 'iife',
    platform: 'browser',
    target: 'es2019',
    minify: true,
  }),
]);
console.log(`client-sdk: bundles written to ${outdir}`);
