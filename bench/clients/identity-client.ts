/**
 * Measuring client of the identity benchmark (bench/identity.ts), in a process of its own so that
 * its clock and event loop are not shared with the bench's JWKS server and orchestration. Driven
 * over IPC:
 *   → {type:'run', url, kinds:[{name, tokens}], rounds, warmup, concurrency, timeoutMs}
 *   ← {type:'result', ...ClientResult} (then exits)
 * A round, for every kind of token in turn (the order rotates by one each round, so no kind
 * always goes first or right after another): `POST /v1/qr` (anonymous, as the browser) → `POST
 * /v1/qr/:id/scan` → `POST /v1/qr/:id/confirm`, both with `Authorization: Bearer <token>` of user
 * `round % N` of that kind. One request at a time per worker (`concurrency` workers share the
 * rounds). Each request is timed on its own (performance.now around a keep-alive node:http
 * request); the first `warmup` rounds are not kept. Every status is checked: a round with an
 * unexpected answer is counted as an error and its samples dropped.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { httpRequest, keepAliveAgent } from '../lib/http.js';

export interface RunMsg {
  type: 'run';
  url: string;
  /** One entry per kind of token; `tokens[i]` is user i's Bearer token. */
  kinds: Array<{ name: string; tokens: string[] }>;
  rounds: number;
  warmup: number;
  concurrency: number;
  timeoutMs: number;
}

/** Latencies (ms) of one kind, in round order (index i of each array = the same round). */
export interface KindSamples {
  create: number[];
  scan: number[];
  confirm: number[];
  /** scan + confirm of the same flow. */
  sum: number[];
}

export interface ClientResult {
  samples: Record<string, KindSamples>;
  errors: number;
  firstErrors: string[];
  /** This process's event-loop delay p99 (ms): part of every latency it measured. */
  loopP99Ms: number;
  ms: number;
}

async function run(msg: RunMsg): Promise<ClientResult> {
  const agent = keepAliveAgent(msg.concurrency * 2);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const started = performance.now();
  const deadline = started + msg.timeoutMs;
  const samples: Record<string, KindSamples> = {};
  for (const k of msg.kinds) samples[k.name] = { create: [], scan: [], confirm: [], sum: [] };
  const result: ClientResult = { samples, errors: 0, firstErrors: [], loopP99Ms: NaN, ms: 0 };
  const headers = { 'content-type': 'application/json', 'user-agent': 'HandoffBench/1.0' };

  const timed = async (url: string, expect: number, extra: Record<string, string> = {}) => {
    const t0 = performance.now();
    const res = await httpRequest(agent, url, { method: 'POST', headers: { ...headers, ...extra }, body: '{}', timeoutMs: 10_000 });
    const dt = performance.now() - t0;
    if (res.status !== expect) throw new Error(`${url.replace(/\/v1\/qr\/[^/]+/, '/v1/qr/:id')} → ${res.status} ${res.body.slice(0, 200)}`);
    return { dt, body: res.body };
  };

  const oneFlow = async (kind: RunMsg['kinds'][number], round: number) => {
    const token = kind.tokens[round % kind.tokens.length];
    const created = await timed(`${msg.url}/v1/qr`, 201);
    const { id } = JSON.parse(created.body) as { id: string };
    const bearer = { authorization: `Bearer ${token}` };
    const scan = await timed(`${msg.url}/v1/qr/${id}/scan`, 200, bearer);
    const confirm = await timed(`${msg.url}/v1/qr/${id}/confirm`, 200, bearer);
    return { create: created.dt, scan: scan.dt, confirm: confirm.dt };
  };

  let next = 0;
  const total = msg.warmup + msg.rounds;
  const worker = async () => {
    for (;;) {
      const round = next++;
      if (round >= total || performance.now() > deadline) return;
      const n = msg.kinds.length;
      const order = Array.from({ length: n }, (_, i) => msg.kinds[(i + round) % n]);
      try {
        const got: Array<[string, Awaited<ReturnType<typeof oneFlow>>]> = [];
        for (const kind of order) got.push([kind.name, await oneFlow(kind, round)]);
        if (round < msg.warmup) continue;
        for (const [name, r] of got) {
          const s = samples[name];
          s.create.push(r.create);
          s.scan.push(r.scan);
          s.confirm.push(r.confirm);
          s.sum.push(r.scan + r.confirm);
        }
      } catch (err) {
        result.errors++;
        if (result.firstErrors.length < 5) result.firstErrors.push(String((err as Error).message ?? err));
      }
    }
  };
  await Promise.all(Array.from({ length: msg.concurrency }, worker));
  loop.disable();
  result.loopP99Ms = loop.percentile(99) / 1e6;
  result.ms = performance.now() - started;
  agent.destroy();
  return result;
}

process.on('message', (msg: { type?: string }) => {
  if (msg?.type !== 'run') return;
  void run(msg as RunMsg).then(
    (r) => process.send!({ type: 'result', ...r }, () => process.exit(0)),
    (err) => process.send!({ type: 'failed', error: String((err as Error)?.stack ?? err) }, () => process.exit(1)),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
