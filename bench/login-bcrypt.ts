/**
 * Baseline for bench/login.ts: raw native `bcrypt.compare` throughput, in its own process so its
 * libuv thread pool (UV_THREADPOOL_SIZE as inherited; the bench leaves it unset = 4) matches a
 * server process's. Env: BCRYPT_N (compares), BCRYPT_COST, BCRYPT_CONCURRENCY (in flight at once).
 * Prints one JSON line on stdout: {n, cost, concurrency, threadpool, seconds, perSecond, loopP99Ms}.
 */
import bcrypt from 'bcrypt';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

const n = Number(process.env.BCRYPT_N ?? 400);
const cost = Number(process.env.BCRYPT_COST ?? 10);
const concurrency = Number(process.env.BCRYPT_CONCURRENCY ?? 4);
const password = 'bench-password-123';

const hash = await bcrypt.hash(password, cost);
// Warm up: one compare per pool thread (thread pool start-up is not part of the measurement).
await Promise.all(Array.from({ length: concurrency }, () => bcrypt.compare(password, hash)));

let next = 0;
let ok = 0;
// This process's own event-loop delay while the pool works: a reference for the server's.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const t0 = performance.now();
await Promise.all(
  Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) {
      next++;
      if (await bcrypt.compare(password, hash)) ok++;
    }
  }),
);
const seconds = (performance.now() - t0) / 1000;
loop.disable();
if (ok !== n) throw new Error(`only ${ok}/${n} compares matched`);
console.log(
  JSON.stringify({ n, cost, concurrency, threadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)', seconds, perSecond: n / seconds, loopP99Ms: loop.percentile(99) / 1e6 }),
);
