/**
 * Measuring client of the approval benchmark (bench/approval.ts), in a process of its own so that
 * both ends of every measurement (the HTTP request to node A and the push received from node B)
 * share one clock and one event loop that nothing else in the bench uses. Driven over IPC:
 *   → {type:'run', a, b, token, login, rounds, warmup, timeoutMs}
 *   ← {type:'result', ...ApprovalClientResult} (then exits)
 * Sockets (websocket transport, both on node B): the phone, authenticated with `token` and
 * subscribed to `user:me`; an anonymous browser socket. Per round, both kinds, the order
 * alternating every round so machine noise falls on both alike:
 *   approval: t0 → `POST A/v1/approvals {login}` → the phone's `state` push with kind 'approval'
 *     and that id; then (untimed) `POST B/v1/approvals/:id/deny`, so no request stays pending.
 *   then timing parity, as many pairs: `POST A/v1/approvals` for the known login and for a login
 *     with no account, HTTP answer times only, the order alternating, each after a 15 ms quiet gap.
 *   qr: (untimed) `POST A/v1/qr`, the browser subscribes to it with its watch token; t0 →
 *     `POST A/v1/qr/:id/scan` (phone's Bearer) → the browser's `scanned` push; then it unsubscribes.
 * The first `warmup` rounds are not kept. A round with an unexpected answer or a push that does not
 * arrive within 10 s counts as an error and its samples are dropped.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { connectSocketIo, emitAck } from '../../test/harness/clients.js';
import { httpRequest, keepAliveAgent } from '../lib/http.js';

export interface ApprovalRunMsg {
  type: 'run';
  /** Node A (the browser's HTTP requests). */
  a: string;
  /** Node B (the phone's and the browser's sockets). */
  b: string;
  /** The phone user's session JWT. */
  token: string;
  /** The phone user's login (email). */
  login: string;
  rounds: number;
  warmup: number;
  timeoutMs: number;
}

export interface ApprovalClientResult {
  /** Request → push, ms, in round order. */
  approval: number[];
  qr: number[];
  /** HTTP answer time of the timed request (POST /v1/approvals, POST /v1/qr/:id/scan), ms. */
  approvalHttp: number[];
  qrHttp: number[];
  /** Timing parity pairs: POST /v1/approvals answer time for a login with an account and one without, ms. */
  knownHttp: number[];
  unknownHttp: number[];
  errors: number;
  firstErrors: string[];
  /** This process's event-loop delay p99 (ms): part of every latency it measured. */
  loopP99Ms: number;
}

type Waiter = { resolve: (t: number) => void };

async function run(msg: ApprovalRunMsg): Promise<ApprovalClientResult> {
  const agent = keepAliveAgent(4);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const result: ApprovalClientResult = { approval: [], qr: [], approvalHttp: [], qrHttp: [], knownHttp: [], unknownHttp: [], errors: 0, firstErrors: [], loopP99Ms: NaN };
  const json = { 'content-type': 'application/json', 'user-agent': 'HandoffBench/1.0' };
  const bearer = { ...json, authorization: `Bearer ${msg.token}` };
  const post = async (url: string, expect: number, headers: Record<string, string>, body = '{}') => {
    const res = await httpRequest(agent, url, { method: 'POST', headers, body, timeoutMs: 10_000 });
    if (res.status !== expect) throw new Error(`${url.replace(/\/v1\/(qr|approvals)\/[^/]+/, '/v1/$1/:id').replace(/^http:\/\/[^/]+/, '')} → ${res.status} ${res.body.slice(0, 200)}`);
    return JSON.parse(res.body) as Record<string, unknown>;
  };

  // Pushes are stamped on arrival (one may come before the HTTP answer that names its id).
  const arrivals = new Map<string, number>();
  const waiters = new Map<string, Waiter>();
  const arrived = (key: string) => {
    const now = performance.now();
    const w = waiters.get(key);
    if (w) {
      waiters.delete(key);
      w.resolve(now);
    } else arrivals.set(key, now);
  };
  const waitFor = (key: string, timeoutMs = 10_000) =>
    new Promise<number>((resolve, reject) => {
      const t = arrivals.get(key);
      if (t !== undefined) {
        arrivals.delete(key);
        return resolve(t);
      }
      const timer = setTimeout(() => {
        waiters.delete(key);
        reject(new Error(`no push ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.set(key, { resolve: (at) => (clearTimeout(timer), resolve(at)) });
    });

  const phone = await connectSocketIo(msg.b, { token: msg.token });
  const browser = await connectSocketIo(msg.b);
  try {
    phone.on('state', (s) => {
      if (s.kind === 'approval' && s.state === 'pending') arrived(`approval|${s.id}`);
    });
    browser.on('state', (s) => {
      if (s.state === 'scanned') arrived(`qr|${s.topic}`);
    });
    const sub = await emitAck<{ ok: boolean }>(phone, 'subscribe', { topic: 'user:me' });
    if (!sub.ok) throw new Error(`subscribe user:me: ${JSON.stringify(sub)}`);

    const approval = async () => {
      const t0 = performance.now();
      const created = await post(`${msg.a}/v1/approvals`, 201, json, JSON.stringify({ login: msg.login }));
      const http = performance.now() - t0;
      const at = await waitFor(`approval|${String(created.id)}`);
      await post(`${msg.b}/v1/approvals/${String(created.id)}/deny`, 200, bearer);
      return { latency: at - t0, http };
    };
    const qr = async () => {
      const created = await post(`${msg.a}/v1/qr`, 201, json);
      const topic = String(created.topic);
      const sub = await emitAck<{ ok: boolean }>(browser, 'subscribe', { topic, watchToken: created.watchToken });
      if (!sub.ok) throw new Error(`subscribe ${topic}: ${JSON.stringify(sub)}`);
      const t0 = performance.now();
      await post(`${msg.a}/v1/qr/${String(created.id)}/scan`, 200, bearer);
      const http = performance.now() - t0;
      const at = await waitFor(`qr|${topic}`);
      await emitAck(browser, 'unsubscribe', { topic });
      return { latency: at - t0, http };
    };

    // An unknown login: the same request, answered the same way (the contract); only its time is taken.
    let unknownSeq = 0;
    const unknown = async () => {
      const t0 = performance.now();
      await post(`${msg.a}/v1/approvals`, 201, json, JSON.stringify({ login: `nobody-${process.pid}-${unknownSeq++}@example.com` }));
      return performance.now() - t0;
    };

    loop.enable();
    const deadline = performance.now() + msg.timeoutMs;
    for (let round = 0; round < msg.warmup + msg.rounds && performance.now() < deadline; round++) {
      try {
        const first = round % 2 === 0 ? 'approval' : 'qr';
        const r1 = first === 'approval' ? await approval() : await qr();
        const r2 = first === 'approval' ? await qr() : await approval();
        if (round < msg.warmup) continue;
        const [ap, q] = first === 'approval' ? [r1, r2] : [r2, r1];
        result.approval.push(ap.latency);
        result.approvalHttp.push(ap.http);
        result.qr.push(q.latency);
        result.qrHttp.push(q.http);
      } catch (err) {
        result.errors++;
        if (result.firstErrors.length < 5) result.firstErrors.push(String((err as Error).message ?? err));
      }
      arrivals.clear();
    }
    // Timing parity: pairs of POST /v1/approvals for a login with and one without an account, the
    // order alternating, each sent after a quiet gap (so neither meets the other's aftermath: the
    // push, the webhook delivery, the deny); the known one is denied afterwards (untimed).
    const GAP_MS = 15;
    const gap = () => new Promise((r) => setTimeout(r, GAP_MS));
    const known = async () => {
      await gap();
      const t0 = performance.now();
      const created = await post(`${msg.a}/v1/approvals`, 201, json, JSON.stringify({ login: msg.login }));
      const took = performance.now() - t0;
      await post(`${msg.b}/v1/approvals/${String(created.id)}/deny`, 200, bearer);
      return took;
    };
    for (let pair = 0; pair < msg.warmup + msg.rounds && performance.now() < deadline; pair++) {
      try {
        const unknownFirst = pair % 2 === 0;
        const u1 = unknownFirst ? (await gap(), await unknown()) : NaN;
        const k = await known();
        const u2 = unknownFirst ? NaN : (await gap(), await unknown());
        if (pair < msg.warmup) continue;
        result.knownHttp.push(k);
        result.unknownHttp.push(unknownFirst ? u1 : u2);
      } catch (err) {
        result.errors++;
        if (result.firstErrors.length < 5) result.firstErrors.push(String((err as Error).message ?? err));
      }
    }
    loop.disable();
    result.loopP99Ms = loop.percentile(99) / 1e6;
    return result;
  } finally {
    phone.close();
    browser.close();
    agent.destroy();
  }
}

process.on('message', (msg: { type?: string }) => {
  if (msg?.type !== 'run') return;
  void run(msg as ApprovalRunMsg).then(
    (r) => process.send!({ type: 'result', ...r }, () => process.exit(0)),
    (err) => process.send!({ type: 'failed', error: String((err as Error)?.stack ?? err) }, () => process.exit(1)),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
