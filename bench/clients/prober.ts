/**
 * Probe process for the login benchmark: times plain reads against a server while the bench
 * process floods it, so that a probe's latency is the server's answer time and not the flooding
 * process's own event-loop delay (a real reader is not the process that sends the flood). It
 * shares the machine's cores with everything else. Driven over IPC:
 *   → {type:'start', url, readEveryMs, healthEveryMs, maxInFlight, timeoutMs}   ← {type:'started'}
 *   → {type:'flow', path, watchToken}   a flow to read (GET <path> with its Watch-Token)
 *   → {type:'posts-done'}               reads sent from now on count as "after the last 202"
 *   → {type:'stop'}                     ← {type:'result', ...ProbeResult} (then exits)
 * Reads: one every readEveryMs on a random flow received so far (at most maxInFlight in flight; a
 * tick that finds them all in flight is skipped). Health: GET /healthz every healthEveryMs, one at
 * a time.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { httpRequest, keepAliveAgent } from '../lib/http.js';

export interface ProbeResult {
  /** Latencies (ms) of 200 reads sent while POSTs were in flight, and after the last 202. */
  readDuringMs: number[];
  readAfterMs: number[];
  readErrors: number;
  readsSkipped: number;
  healthMs: number[];
  healthErrors: number;
  /** This process's own event-loop delay p99 (ms): what its latencies may include. */
  loopP99Ms: number;
}

interface StartMsg {
  type: 'start';
  url: string;
  readEveryMs: number;
  healthEveryMs: number;
  maxInFlight: number;
  timeoutMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const agent = keepAliveAgent(16);
const get = (url: string, headers: Record<string, string> = {}) => httpRequest(agent, url, { headers }).then((r) => r.status);

const flows: Array<{ path: string; watchToken: string }> = [];
const result: ProbeResult = { readDuringMs: [], readAfterMs: [], readErrors: 0, readsSkipped: 0, healthMs: [], healthErrors: 0, loopP99Ms: NaN };
let postsDone = false;
let running = false;
const loop = monitorEventLoopDelay({ resolution: 10 });

async function healthLoop(opts: StartMsg): Promise<void> {
  const maxProbes = Math.ceil(opts.timeoutMs / opts.healthEveryMs);
  for (let i = 0; running && i < maxProbes; i++) {
    const t = performance.now();
    try {
      const status = await get(opts.url + '/healthz');
      if (status === 200) result.healthMs.push(performance.now() - t);
      else result.healthErrors++;
    } catch {
      result.healthErrors++;
    }
    await sleep(Math.max(0, opts.healthEveryMs - (performance.now() - t)));
  }
}

async function readLoop(opts: StartMsg): Promise<void> {
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  const maxTicks = Math.ceil(opts.timeoutMs / opts.readEveryMs);
  for (let tick = 1; running && tick <= maxTicks; tick++) {
    if (flows.length > 0) {
      if (pending.size >= opts.maxInFlight) result.readsSkipped++;
      else {
        const flow = flows[Math.floor(Math.random() * flows.length)];
        const after = postsDone;
        const t = performance.now();
        const p = get(opts.url + flow.path, { 'watch-token': flow.watchToken })
          .then((status) => {
            if (status === 200) (after ? result.readAfterMs : result.readDuringMs).push(performance.now() - t);
            else result.readErrors++;
          })
          .catch(() => void result.readErrors++)
          .finally(() => pending.delete(p));
        pending.add(p);
      }
    }
    await sleep(Math.max(0, start + tick * opts.readEveryMs - performance.now()));
  }
  await Promise.allSettled([...pending]);
}

let loops: Promise<unknown> = Promise.resolve();
process.on('message', (msg: any) => {
  switch (msg?.type) {
    case 'start':
      running = true;
      loop.enable();
      loops = Promise.all([healthLoop(msg), readLoop(msg)]);
      process.send!({ type: 'started' });
      break;
    case 'flow':
      flows.push({ path: msg.path, watchToken: msg.watchToken });
      break;
    case 'posts-done':
      postsDone = true;
      break;
    case 'stop':
      running = false;
      void loops.then(() => {
        loop.disable();
        result.loopP99Ms = loop.percentile(99) / 1e6;
        process.send!({ type: 'result', ...result }, () => process.exit(0));
      });
      break;
  }
});
process.on('disconnect', () => process.exit(0));
