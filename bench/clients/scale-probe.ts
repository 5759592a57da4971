/**
 * Measuring client of the scale benchmark, a process of its own (the idle connections live in
 * holder processes): it times QR confirms across nodes, both ends in this process (one clock).
 * Driven over IPC:
 *   → {type:'prepare', nodes:[url...], token, flows}
 *       creates `flows` QR flows, flow i on node i % n, subscribes each over /v1/ws on that node
 *       (fresh connections, 50 topics per connection, the protocol's most) and scans it (Bearer
 *       `token`) on node (i + 1) % n.                        ← {type:'prepared', ms, conns}
 *   → {type:'run', rate, seconds}
 *       confirms the prepared flows on node (i + 1) % n at a steady `rate` per second (an
 *       open-loop schedule: a late confirm does not delay the next), then waits up to 5 s for
 *       the last pushes.  ← {type:'result', sent, latencies, httpMs, lost, errors, loopP99Ms}
 * Latency = just before `POST /v1/qr/{id}/confirm` is sent → the `confirmed` state frame received
 * on the subscriber's node. Its own event-loop delay p99 is reported (it is in every figure).
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { httpRequest, keepAliveAgent } from '../lib/http.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const agent = keepAliveAgent(64);
const TOPICS_PER_CONN = 50;

interface Flow {
  id: string;
  topic: string;
  node: number;
}

let flows: Flow[] = [];
let sockets: WebSocket[] = [];
let token = '';
let nodes: string[] = [];
/** id → send time of its confirm; resolved (deleted) when the push arrives. */
const waiting = new Map<string, number>();
let latencies: number[] = [];

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i], i);
    }),
  );
  return out;
}

async function post(url: string, headers: Record<string, string> = {}) {
  for (let attempt = 1; ; attempt++) {
    const res = await httpRequest(agent, url, { method: 'POST', headers: { 'user-agent': 'BenchProbe/1.0', ...headers }, timeoutMs: 15_000 });
    if (res.status < 300) return JSON.parse(res.body);
    if (attempt >= 3 || res.status < 500) throw new Error(`POST ${url}: ${res.status} ${res.body.slice(0, 200)}`);
    await sleep(200);
  }
}

function openWs(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/ws', { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function onFrame(data: WebSocket.RawData, replies: Map<string, (f: any) => void>): void {
  const now = performance.now();
  const frame = JSON.parse(data.toString());
  if (frame.type === 'state' && frame.state === 'confirmed') {
    const t0 = waiting.get(frame.id);
    if (t0 !== undefined) {
      waiting.delete(frame.id);
      latencies.push(now - t0);
    }
  } else if (frame.type === 'reply') {
    replies.get(frame.ref)?.(frame);
    replies.delete(frame.ref);
  }
}

async function prepare(msg: { nodes: string[]; token: string; flows: number }): Promise<void> {
  const started = Date.now();
  for (const s of sockets) s.terminate();
  sockets = [];
  nodes = msg.nodes;
  token = msg.token;
  const n = nodes.length;
  // Connections: enough per node for its share of the flows at 50 topics each.
  const perNode = Math.ceil(Math.ceil(msg.flows / n) / TOPICS_PER_CONN);
  const conns: Array<Array<{ ws: WebSocket; replies: Map<string, (f: any) => void>; ref: number }>> = [];
  for (let node = 0; node < n; node++) {
    conns.push(
      await mapLimit(Array.from({ length: perNode }), 10, async () => {
        const ws = await openWs(nodes[node]);
        sockets.push(ws);
        const replies = new Map<string, (f: any) => void>();
        ws.on('message', (d) => onFrame(d, replies));
        return { ws, replies, ref: 0 };
      }),
    );
  }
  flows = await mapLimit(Array.from({ length: msg.flows }), 16, async (_, i) => {
    const node = i % n;
    const qr = await post(`${nodes[node]}/v1/qr`);
    const c = conns[node][Math.floor(i / n / TOPICS_PER_CONN)];
    const ref = `s${c.ref++}`;
    const reply = await new Promise<any>((resolve) => {
      c.replies.set(ref, resolve);
      c.ws.send(JSON.stringify({ type: 'subscribe', ref, topic: qr.topic, watchToken: qr.watchToken }));
    });
    if (!reply.ok) throw new Error(`subscribe: ${JSON.stringify(reply).slice(0, 200)}`);
    await post(`${nodes[(node + 1) % n]}/v1/qr/${qr.id}/scan`, { authorization: `Bearer ${token}` });
    return { id: qr.id, topic: qr.topic, node };
  });
  process.send!({ type: 'prepared', ms: Date.now() - started, conns: sockets.length });
}

async function run(msg: { rate: number; seconds: number }): Promise<void> {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  latencies = [];
  waiting.clear();
  const httpMs: number[] = [];
  const errors: string[] = [];
  const n = nodes.length;
  const total = Math.min(flows.length, Math.round(msg.rate * msg.seconds));
  const inFlight: Promise<void>[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * msg.rate) + 1);
    for (; sent < due; sent++) {
      const f = flows[sent];
      const t = performance.now();
      waiting.set(f.id, t);
      inFlight.push(
        httpRequest(agent, `${nodes[(f.node + 1) % n]}/v1/qr/${f.id}/confirm`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, timeoutMs: 15_000 }).then(
          (res) => {
            httpMs.push(performance.now() - t);
            if (res.status !== 200) {
              waiting.delete(f.id);
              if (errors.length < 100) errors.push(`${res.status} ${res.body.slice(0, 100)}`);
            }
          },
          (err) => {
            waiting.delete(f.id);
            if (errors.length < 100) errors.push(String(err.message ?? err));
          },
        ),
      );
    }
    await sleep(Math.max(0, t0 + (sent / msg.rate) * 1000 - performance.now()));
  }
  await Promise.all(inFlight);
  for (let i = 0; i < 50 && waiting.size > 0; i++) await sleep(100);
  loop.disable();
  process.send!({ type: 'result', sent, latencies, httpMs, lost: waiting.size, errors, loopP99Ms: loop.percentile(99) / 1e6 });
}

process.on('message', (msg: any) => {
  const fail = (err: unknown) => process.send!({ type: 'failed', error: String((err as Error).stack ?? err) });
  if (msg?.type === 'prepare') prepare(msg).catch(fail);
  if (msg?.type === 'run') run(msg).catch(fail);
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
