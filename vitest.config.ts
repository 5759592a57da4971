import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@handoff/protocol': src('./protocol/src/index.ts'),
      // Before '@handoff/client-sdk', which would otherwise take the subpath (the first match wins).
      '@handoff/client-sdk/server': src('./client-sdk/src/server.ts'),
      '@handoff/client-sdk': src('./client-sdk/src/index.ts'),
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    // The second names any test file whose worker died before it finished (see its header).
    reporters: ['default', './test/harness/unfinished-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Cluster and e2e tests start real processes; two cores, so keep the pool small.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
