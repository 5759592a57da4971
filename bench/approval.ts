/**
 * Benchmark (issue #16): a push-to-approve request created on node A and pushed to the phone on
 * node B, next to the QR `scanned` push (scan on A → browser on B) in the same run.
 *
 * One private redis-server, two real Handoff API nodes (bench/servers/handoff.ts →
 * server/src/main.ts, NODE_ENV=production) on it with one REDIS_PREFIX; the built-in user Ana
 * (SEED_USERS) logs in on B over HTTP (session JWT). Limits that would interfere are lifted:
 * APPROVALS_PER_USER=100 (the most allowed; each request is denied right after its push anyway),
 * APPROVAL_IP_PER_MINUTE, APPROVAL_USER_PER_MINUTE and QR_IP_PER_MINUTE = 0 (no limit).
 *
 * The measuring client is a process of its own (bench/clients/approval-client.ts): both ends of a
 * measurement in it, one clock. Per round one approval and one QR scan, the order alternating every
 * round. approval: just before `POST A/v1/approvals {login}` → the phone's `state` push (kind
 * 'approval', that id) on B. qr: just before `POST A/v1/qr/:id/scan` → the browser's `scanned`
 * push on B. Reported: p50/p99/max per kind, ratio approval/QR at p50 and p99 (target ≤ 1.2x), the
 * p99 ratio per fifth of the rounds, the HTTP answer times, load average before and after, and the
 * CPU share of processes outside the bench.
 *
 * Env (read in bench/run.ts): BENCH_APPROVAL_ROUNDS (default 2000; quick 300),
 * BENCH_APPROVAL_WARMUP (default 200; quick 50); BENCH_APPROVAL_WEBHOOKS=1 (read here: a webhook
 * endpoint in this process receives approval.requested / approval.denied; off by default, since the
 * QR rounds raise no webhook and the deliveries would load the approval rounds only).
 *
 * Then timing parity (issue #16: no way to learn whether a login exists from POST /v1/approvals):
 * as many pairs of that request for the known login and for a login with no account, HTTP answer
 * times, the order alternating, each after a 15 ms quiet gap; ratio unknown / known.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ANA, login } from '../test/harness/cluster.js';
import { startRedis, type RedisHandle } from '../test/harness/redis-server.js';
import { handoffBenchEnv } from './lib/handoff-env.js';
import type { ApprovalClientResult, ApprovalRunMsg } from './clients/approval-client.js';
import { cpuSample, foreignCpu, spawnNode, startServer, type ServerChild } from './lib/proc.js';
import { loadAverage, log, ms, ratio, summarize, table, type RunConditions, type Summary } from './lib/util.js';

export interface ApprovalOptions {
  /** Measured rounds (each: one approval and one QR scan). */
  rounds: number;
  /** Rounds run first and not kept. */
  warmup: number;
  /** Ratio approval/QR aimed at (p50 and p99). */
  target: number;
}

export interface ApprovalResult extends RunConditions {
  options: ApprovalOptions;
  approval: Summary;
  qr: Summary;
  approvalHttp: Summary;
  qrHttp: Summary;
  /** Timing parity pairs: POST /v1/approvals for a login with an account and for one without. */
  knownHttp: Summary;
  unknownHttp: Summary;
  /** Webhook deliveries the sink received (approval.requested and approval.denied of the known logins). */
  webhooks: number;
  ratioP50: number;
  ratioP99: number;
  /** p99 approval / p99 QR per fifth of the rounds. */
  perFifthP99: number[];
}

/** Start the two nodes and the client, run the rounds, summarise. */
export async function runApproval(opts: ApprovalOptions): Promise<ApprovalResult> {
  let redis: RedisHandle | null = null;
  const servers: ServerChild[] = [];
  let client: ReturnType<typeof spawnNode> | null = null;
  // The app backend's webhook endpoint: a known login raises approval.requested, an unknown one nothing.
  let webhooks = 0;
  const sink = createServer((req, res) => {
    req.resume().on('end', () => {
      webhooks++;
      res.writeHead(204).end();
    });
  });
  try {
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    redis = await startRedis();
    const env = handoffBenchEnv('bench-appr', {
      REDIS_URL: redis.url,
      QR_TTL_SECONDS: '600',
      APPROVALS_PER_USER: '100',
      APPROVAL_IP_PER_MINUTE: '0',
      APPROVAL_USER_PER_MINUTE: '0',
      APPROVAL_TTL_SECONDS: '600',
      // BENCH_APPROVAL_WEBHOOKS=1: a webhook endpoint (then each approval round also delivers two webhooks).
      ...(process.env.BENCH_APPROVAL_WEBHOOKS !== '1'
        ? {}
        : { WEBHOOK_URLS: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hooks`, WEBHOOK_SECRET: 'bench-webhook-secret-0123456789abcdef' }),
    });
    // Sequentially: both nodes seed the same users.
    const a = await startServer('handoff-approval-A', 'bench/servers/handoff.ts', env);
    servers.push(a);
    const b = await startServer('handoff-approval-B', 'bench/servers/handoff.ts', env);
    servers.push(b);
    const token = await login(b.url, ANA);

    client = spawnNode('approval-client', 'bench/clients/approval-client.ts', {});
    await client.next('ready', 30_000);
    const loadBefore = loadAverage();
    const cpu0 = cpuSample();
    const t0 = performance.now();
    log(`approval: A ${a.url}, B ${b.url}; ${opts.warmup} warm-up + ${opts.rounds} rounds (approval and QR alternating); load ${loadBefore}`);
    const timeoutMs = 20 * 60_000;
    const msg: ApprovalRunMsg = { type: 'run', a: a.url, b: b.url, token, login: ANA.email, rounds: opts.rounds, warmup: opts.warmup, timeoutMs };
    const r = await client.request<ApprovalClientResult>(msg, 'result', timeoutMs + 30_000);
    const measureS = (performance.now() - t0) / 1000;
    const foreign = foreignCpu(cpu0, cpuSample());
    const loadAfter = loadAverage();

    const approval = summarize(r.approval);
    const qr = summarize(r.qr);
    const fifths = (x: number[]) => Array.from({ length: 5 }, (_, i) => x.slice(Math.floor((i * x.length) / 5), Math.floor(((i + 1) * x.length) / 5)));
    const fq = fifths(r.qr);
    const perFifthP99 = fifths(r.approval).map((x, i) => summarize(x).p99 / summarize(fq[i]).p99);
    log(`approval: p50/p99 approval ${ms(approval.p50)}/${ms(approval.p99)}, qr ${ms(qr.p50)}/${ms(qr.p99)} ms; errors ${r.errors}`);
    return {
      options: opts,
      approval,
      qr,
      approvalHttp: summarize(r.approvalHttp),
      qrHttp: summarize(r.qrHttp),
      knownHttp: summarize(r.knownHttp),
      unknownHttp: summarize(r.unknownHttp),
      webhooks,
      ratioP50: approval.p50 / qr.p50,
      ratioP99: approval.p99 / qr.p99,
      perFifthP99,
      errors: r.errors,
      firstErrors: r.firstErrors,
      clientLoopP99Ms: r.loopP99Ms,
      foreignCpu: foreign,
      loadBefore,
      loadAfter,
      measureS,
    };
  } finally {
    await client?.stop(2000);
    for (const s of servers.reverse()) await s.stop(5000);
    await redis?.stop();
    sink.close();
  }
}

/** The result as markdown (table, notes, verdict). */
export function approvalMarkdown(r: ApprovalResult, tookS: number): string {
  const t = r.options.target;
  const met = r.ratioP50 <= t && r.ratioP99 <= t;
  const row = (label: string, s: Summary, http: Summary, ratios: boolean) => [
    label,
    String(s.n),
    ms(s.p50),
    ms(s.p99),
    ms(s.max),
    `${ms(http.p50)}/${ms(http.p99)}`,
    ratios ? `**${r.ratioP50.toFixed(2)}x**` : '',
    ratios ? `**${r.ratioP99.toFixed(2)}x**` : '',
    ratios ? r.perFifthP99.map((x) => x.toFixed(2)).join(' / ') : '',
  ];
  return [
    table(
      ['push', 'samples', 'p50', 'p99', 'max', 'HTTP answer p50/p99', 'ratio p50', 'ratio p99', 'ratio p99 per fifth of the rounds'],
      [
        row('approval: `POST A/v1/approvals` → phone on B (`user:me`)', r.approval, r.approvalHttp, true),
        row('QR: `POST A/v1/qr/:id/scan` → browser on B (`scanned`)', r.qr, r.qrHttp, false),
      ],
    ),
    '',
    `Milliseconds, just before the POST to node A → the push received on node B, timed by one client process. Ratio = approval / QR. ` +
      `Errors: ${r.errors}${r.firstErrors.length ? ` (${r.firstErrors.join('; ')})` : ''}. Client event-loop p99 ${ms(r.clientLoopP99Ms)} ms. ` +
      `Measuring took ${r.measureS.toFixed(0)} s; other processes used ${(r.foreignCpu * 100).toFixed(0)}% of the CPU; ` +
      `load average (1/5/15 min) before ${r.loadBefore}, after ${r.loadAfter}.`,
    '',
    table(
      ['POST /v1/approvals', 'samples', 'HTTP answer p50', 'p90', 'p99', 'ratio p50', 'ratio p90', 'ratio p99'],
      [
        [`login with an account (push to the phone${r.webhooks > 0 ? ', `approval.requested` webhook' : ''})`, String(r.knownHttp.n), ms(r.knownHttp.p50), ms(r.knownHttp.p90), ms(r.knownHttp.p99), '', '', ''],
        [
          'login without an account (published on a topic nobody subscribes to, no webhook)',
          String(r.unknownHttp.n),
          ms(r.unknownHttp.p50),
          ms(r.unknownHttp.p90),
          ms(r.unknownHttp.p99),
          `**${(r.unknownHttp.p50 / r.knownHttp.p50).toFixed(2)}x**`,
          `**${(r.unknownHttp.p90 / r.knownHttp.p90).toFixed(2)}x**`,
          `**${(r.unknownHttp.p99 / r.knownHttp.p99).toFixed(2)}x**`,
        ],
      ],
    ),
    '',
    `The answer time of the same request for a login with and without an account: after the rounds above, as many pairs, ` +
      `the order alternating, each request sent after a 15 ms quiet gap (so neither meets the aftermath of the other) ` +
      `(ratio = without / with; 1.00x: nothing to tell them apart by). Webhook deliveries received by the sink: ${r.webhooks}.`,
    '',
    `Verdict (approval/QR ≤ ${t}x at p50 and p99): ${met ? 'met' : `MISSED (p50 ${ratio(r.approval.p50, r.qr.p50)}, p99 ${ratio(r.approval.p99, r.qr.p99)})`}. Benchmark took ${tookS.toFixed(0)} s.`,
    '',
  ].join('\n');
}
