/**
 * Profiling aid for the memory benchmark: what one idle subscribed connection retains in a
 * server's V8 heap, by object kind. Takes a heap snapshot of the server with 0 and with N
 * connections (after warm-up and a forced GC) and prints the per-connection difference.
 *
 *   node --conditions=source --import tsx bench/heap-diff.ts handoff-ws [2000]
 *   (targets: handoff-sio, handoff-ws, bare-sio, bare-ws)
 *
 * Snapshots go to a temp dir that is removed afterwards. Self sizes only (no native memory such
 * as kernel socket buffers), so the total is below the RSS figure of `npm run bench -- memory`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TARGETS } from './memory.js';
import { sleep, spawnNode, startServer } from './lib/proc.js';

const id = process.argv[2];
const n = Number(process.argv[3] ?? 2000);
const target = TARGETS.find((t) => t.id === id);
if (!target || !(n > 0)) {
  console.error(`usage: bench/heap-diff.ts <${TARGETS.map((t) => t.id).join('|')}> [connections]`);
  process.exit(64);
}
const dir = mkdtempSync(join(tmpdir(), 'handoff-heap-'));
const watchdog = setTimeout(() => {
  console.error('heap-diff: timed out');
  process.exit(2);
}, 600_000);
watchdog.unref();

const server = await startServer(target.id, target.script, target.env(null), { execArgv: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] });
try {
  const warmup = 100;
  const subs = await target.subs(server, n + warmup);
  const warm = spawnNode('warm-up', 'bench/clients/holder.ts', {});
  await warm.next('ready');
  await warm.request({ type: 'connect', transport: target.transport, url: server.url, event: target.event, subs: subs.slice(n), concurrency: 50, timeoutMs: 30_000 }, 'connected', 60_000);
  await warm.request({ type: 'close' }, 'closed');
  await warm.stop();
  await sleep(1000);

  const snapshot = async (): Promise<string> => {
    const before = new Set(readdirSync(dir));
    await server.mem(); // forced GC first
    process.kill(server.pid, 'SIGUSR2');
    for (let i = 0; i < 240; i++) {
      await sleep(500);
      const file = readdirSync(dir).find((f) => !before.has(f));
      if (!file) continue;
      // Written when its size stops changing.
      for (let last = -1; ; ) {
        await sleep(1500);
        const size = statSync(join(dir, file)).size;
        if (size === last) return join(dir, file);
        last = size;
      }
    }
    throw new Error('no heap snapshot written');
  };

  const empty = aggregate(await snapshot());
  const holder = spawnNode('holder', 'bench/clients/holder.ts', {});
  await holder.next('ready');
  const res = await holder.request<{ ok: number; failed: number }>(
    { type: 'connect', transport: target.transport, url: server.url, event: target.event, subs: subs.slice(0, n), concurrency: 50, timeoutMs: 30_000 },
    'connected',
    300_000,
  );
  await sleep(1000);
  const loaded = aggregate(await snapshot());
  await holder.stop(1000);

  let total = 0;
  const rows: Array<[string, number, number]> = [];
  for (const [key, v] of loaded) {
    const o = empty.get(key) ?? { count: 0, size: 0 };
    total += v.size - o.size;
    rows.push([key, (v.count - o.count) / res.ok, (v.size - o.size) / res.ok]);
  }
  rows.sort((a, b) => b[2] - a[2]);
  console.log(`${target.label}: ${res.ok} connections (${res.failed} failed); V8 heap self size per connection: ${(total / res.ok).toFixed(0)} B`);
  console.log('  bytes  objects  kind');
  for (const [key, count, size] of rows.filter((r) => Math.abs(r[2]) >= 8).slice(0, 40)) {
    console.log(`${size.toFixed(0).padStart(7)} ${count.toFixed(2).padStart(8)}  ${key}`);
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);

/** Self size and count per (node type, constructor/closure name). */
function aggregate(file: string): Map<string, { count: number; size: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  rmSync(file);
  const fields: string[] = snap.snapshot.meta.node_fields;
  const types: string[] = snap.snapshot.meta.node_types[0];
  const F = fields.length;
  const ti = fields.indexOf('type');
  const ni = fields.indexOf('name');
  const si = fields.indexOf('self_size');
  const nodes: number[] = snap.nodes;
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < nodes.length; i += F) {
    const type = types[nodes[i + ti]];
    const name: string = snap.strings[nodes[i + ni]];
    let key: string;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') key = 'string';
    else if (type === 'code' || type === 'number') key = type;
    else if (type === 'closure') key = `closure ${name || '(anonymous)'}`;
    else key = `${type} ${name.slice(0, 60)}`;
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += nodes[i + si];
    out.set(key, e);
  }
  return out;
}
