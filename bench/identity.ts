/**
 * Benchmark (issue #14): QR scan and confirm with the app's own tokens (ACCOUNTS=both, keys from
 * the app's JWKS, cached) next to built-in session tokens, in the same run, on the same server.
 *
 * Per store mode (embedded, then Redis with a private redis-server unless BENCH_IDENTITY_REDIS=0):
 * one real Handoff server process (bench/servers/handoff.ts → server/src/main.ts, NODE_ENV=production)
 * with ACCOUNTS=both, APP_JWKS_URL pointing at a JWKS server in this bench process that publishes
 * the app's RS256 key and an ES256 key (two `kid`s in one document) and counts its requests: a
 * cached JWKS is fetched once per server. N built-in users (SEED_USERS, logged in over HTTP: HS256
 * session JWTs) and N app users (RS256 tokens, and ES256 tokens, signed here with `kid`).
 *
 * The measuring client is a process of its own (bench/clients/identity-client.ts): interleaved
 * rounds, each one QR flow per kind of token (create → scan → confirm over HTTP, keep-alive), the
 * order of the kinds rotating every round, so machine noise falls on every kind alike. Warm-up
 * rounds (JWKS fetch, JIT) are not kept. Reported per kind: p50/p99/max of scan, confirm and
 * scan + confirm, and the ratio app/built-in of p99 (target ≤ 1.1x); the p99 ratio per fifth of
 * the rounds, to show its spread; the JWKS request count; load average before and after; the CPU
 * share of processes outside the bench. Then the server's CPU time per flow, kind by kind (blocks of
 * BENCH_IDENTITY_CPU_FLOWS flows of one kind, three passes, read from /proc: every thread of the
 * server, so WebCrypto's work on libuv's pool counts too; and redis-server's), which a busy machine
 * disturbs much less than a p99. Then, in this process, the cost of the token checks
 * themselves (jose jwtVerify, HS256 vs RS256 vs ES256 with a cached key set), to set the figures
 * against.
 *
 * Env: BENCH_IDENTITY_ROUNDS (default 3000; quick 300), BENCH_IDENTITY_WARMUP (300; quick 50),
 * BENCH_IDENTITY_USERS (N, default 100; quick 20), BENCH_IDENTITY_CONCURRENCY (client workers,
 * default 1: one request at a time), BENCH_IDENTITY_REDIS=0 (embedded only),
 * BENCH_IDENTITY_ES256=0 (built-in vs RS256 only), BENCH_IDENTITY_CPU_FLOWS (default 1000; quick
 * 200; 0 skips the CPU phase).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createLocalJWKSet, exportJWK, exportPKCS8, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose';
import { startRedis, uniquePrefix, type RedisHandle } from '../test/harness/redis-server.js';
import { TEST_JWT_SECRET } from '../test/harness/server-process.js';
import type { ClientResult, KindSamples, RunMsg } from './clients/identity-client.js';
import { httpRequest, keepAliveAgent } from './lib/http.js';
import { cpuSample, cpuSecondsOf, foreignCpu, procStat, spawnNode, startServer, type ServerChild } from './lib/proc.js';
import { loadAverage, log, mapLimit, ms, ratio, summarize, table, type RunConditions, type Summary } from './lib/util.js';

export interface IdentityOptions {
  /** Measured rounds per mode (each round: one flow per kind of token). */
  rounds: number;
  /** Rounds run first and not kept. */
  warmup: number;
  /** Users per kind of token. */
  users: number;
  /** Client workers (each one request at a time). */
  concurrency: number;
  /** Also run in Redis mode. */
  redis: boolean;
  /** Also an ES256 app-token kind. */
  es256: boolean;
  /** Flows per block of the server-CPU phase (0: no such phase). */
  cpuFlows: number;
  /** The p99 ratio app/built-in aimed at. */
  target: number;
}

type Op = 'scan' | 'confirm' | 'sum' | 'create';
const OPS: Op[] = ['scan', 'confirm', 'sum', 'create'];

export interface IdentityKind {
  name: string;
  label: string;
  stats: Record<Op, Summary>;
}

export interface IdentityMode extends RunConditions {
  mode: string;
  kinds: IdentityKind[];
  /** For each app kind and op: p99 app / p99 built-in, pooled and per fifth of the rounds. */
  ratios: Array<{ kind: string; op: Op; p50: number; p99: number; perFifth: number[] }>;
  /**
   * Server CPU (all its threads, from /proc) per flow (create + scan + confirm), ms, per kind: one
   * value per block of `cpuFlows` flows of that kind alone; and redis-server's, in Redis mode.
   */
  cpuPerFlowMs: Record<string, { server: number[]; redis: number[] }>;
  /** Requests the JWKS server answered for this server process (expected: 1). */
  jwksFetches: number;
}

export interface IdentityResult {
  options: IdentityOptions;
  modes: IdentityMode[];
  /** Mean µs of one jwtVerify in the bench process, cached keys. */
  verifyUs: Record<string, number>;
}

const ISSUER = 'https://acme.bench';
const AUDIENCE = 'handoff-bench';
const PASSWORD = 'bench-password-123';
const KINDS = { builtin: 'built-in session (HS256)', rs256: 'app token RS256 (JWKS)', es256: 'app token ES256 (JWKS)' } as const;

/** The app's signing keys and the JWKS document that publishes their public halves. */
async function appKeys() {
  const rsa = await generateKeyPair('RS256', { modulusLength: 2048 });
  const ec = await generateKeyPair('ES256');
  const rsaJwk: JWK = { ...(await exportJWK(rsa.publicKey)), kid: 'acme-rsa-1', alg: 'RS256', use: 'sig' };
  const ecJwk: JWK = { ...(await exportJWK(ec.publicKey)), kid: 'acme-ec-1', alg: 'ES256', use: 'sig' };
  const sign = (alg: 'RS256' | 'ES256', sub: string) =>
    new SignJWT({ name: `Acme ${sub}` })
      .setProtectedHeader({ alg, kid: alg === 'RS256' ? rsaJwk.kid! : ecJwk.kid!, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('3h')
      .sign(alg === 'RS256' ? rsa.privateKey : ec.privateKey);
  return { jwks: { keys: [rsaJwk, ecJwk] }, sign };
}

/** The app's JWKS endpoint, in this process: counts every request. */
async function jwksServer(doc: object): Promise<{ url: string; hits(): number; close(): Promise<void> }> {
  let hits = 0;
  const body = JSON.stringify(doc);
  const server: Server = createServer((req, res) => {
    hits++;
    if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=600' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Mean µs of one call of `fn`, over `n` calls. */
async function timeIt(n: number, fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return ((performance.now() - t) / n) * 1000;
}

/**
 * The token checks alone, as the server runs them (jose jwtVerify; the built-in secret as the
 * Uint8Array server/src/users/jwt.ts passes, the app keys from a cached key set). Five passes over
 * every case, in a rotating order, after one unmeasured pass; the median pass is reported.
 */
async function verifyCosts(keys: Awaited<ReturnType<typeof appKeys>>, n: number): Promise<Record<string, number>> {
  const secret = new TextEncoder().encode(TEST_JWT_SECRET);
  const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').setExpirationTime('1h').sign(secret);
  const rs = await keys.sign('RS256', 'acme-1');
  const es = await keys.sign('ES256', 'acme-1');
  const local = createLocalJWKSet(keys.jwks as { keys: JWK[] });
  const app = { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'] };
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['HS256 (built-in)', () => jwtVerify(hs, secret, { algorithms: ['HS256'] })],
    // With ACCOUNTS=both an app token is first offered to the built-in check, which refuses its alg.
    ['HS256 check refusing an RS256 token', () => jwtVerify(rs, secret, { algorithms: ['HS256'] }).catch(() => undefined)],
    ['RS256 (app, cached JWKS)', () => jwtVerify(rs, local, app)],
    ['ES256 (app, cached JWKS)', () => jwtVerify(es, local, app)],
  ];
  for (const [, fn] of cases) await timeIt(n / 10, fn);
  const passes = new Map<string, number[]>(cases.map(([name]) => [name, []]));
  for (let pass = 0; pass < 5; pass++) {
    for (let i = 0; i < cases.length; i++) {
      const [name, fn] = cases[(i + pass) % cases.length];
      passes.get(name)!.push(await timeIt(n / 5, fn));
    }
  }
  return Object.fromEntries([...passes].map(([name, us]) => [name, us.sort((a, b) => a - b)[2]]));
}

async function runMode(
  name: 'embedded' | 'redis',
  opts: IdentityOptions,
  keys: Awaited<ReturnType<typeof appKeys>>,
  jwks: Awaited<ReturnType<typeof jwksServer>>,
  assertionKeyPem: string,
): Promise<IdentityMode> {
  let redis: RedisHandle | null = null;
  let server: ServerChild | null = null;
  let client: ReturnType<typeof spawnNode> | null = null;
  try {
    if (name === 'redis') redis = await startRedis();
    const users = Array.from({ length: opts.users }, (_, i) => `bench-${i}@example.com`);
    server = await startServer(`handoff-identity-${name}`, 'bench/servers/handoff.ts', {
      ...(redis ? { REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('bench-id') } : {}),
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      JWT_SECRET: TEST_JWT_SECRET,
      SEED_DEMO_USER: 'false',
      SEED_USERS: users.map((u, i) => `${u}:${PASSWORD}:Bench ${i}`).join(','),
      BCRYPT_COST: '4',
      LOGIN_IP_PER_MINUTE: '1000000',
      QR_IP_PER_MINUTE: '0',
      QR_TTL_SECONDS: '600',
      ACCOUNTS: 'both',
      APP_JWKS_URL: jwks.url,
      APP_JWT_ISSUER: ISSUER,
      APP_JWT_AUDIENCE: AUDIENCE,
      ASSERTION_AUDIENCE: 'acme-web',
      ASSERTION_SIGNING_KEY: assertionKeyPem,
    });
    const url = server.url;

    // Built-in users log in over HTTP (HS256 session JWTs); app users get tokens signed here.
    const agent = keepAliveAgent(8);
    const builtin = await mapLimit(users, 8, async (email) => {
      const res = await httpRequest(agent, `${url}/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: PASSWORD }),
      });
      if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${res.body.slice(0, 200)}`);
      return (JSON.parse(res.body) as { token: string }).token;
    });
    agent.destroy();
    const kinds: RunMsg['kinds'] = [{ name: 'builtin', tokens: builtin }];
    kinds.push({ name: 'rs256', tokens: await Promise.all(users.map((_, i) => keys.sign('RS256', `acme-${i}`))) });
    if (opts.es256) kinds.push({ name: 'es256', tokens: await Promise.all(users.map((_, i) => keys.sign('ES256', `acme-${i}`))) });

    const hits0 = jwks.hits();
    client = spawnNode(`identity-client-${name}`, 'bench/clients/identity-client.ts', {});
    await client.next('ready', 30_000);
    const loadBefore = loadAverage();
    const cpu0 = cpuSample();
    const t0 = performance.now();
    log(`identity (${name}): ${kinds.map((k) => k.name).join(' / ')}, ${opts.users} users each, ${opts.warmup} warm-up + ${opts.rounds} rounds, concurrency ${opts.concurrency}; load ${loadBefore}`);
    const timeoutMs = 20 * 60_000;
    const msg: RunMsg = { type: 'run', url, kinds, rounds: opts.rounds, warmup: opts.warmup, concurrency: opts.concurrency, timeoutMs };
    const result = await client.request<ClientResult & { type: 'result' }>(msg, 'result', timeoutMs + 30_000);
    const measureS = (performance.now() - t0) / 1000;
    const foreign = foreignCpu(cpu0, cpuSample());
    const loadAfter = loadAverage();

    // Server CPU per flow, kind by kind: blocks of `cpuFlows` flows of one kind (a fresh client
    // process each), three passes in a rotating order. CPU time is what the token check costs the
    // server whatever the scheduler does with it, so it survives a busy machine better than p99.
    const cpuPerFlowMs: IdentityMode['cpuPerFlowMs'] = Object.fromEntries(kinds.map((k) => [k.name, { server: [], redis: [] }]));
    const cpuOf = (pid: number) => {
      const f = procStat(`/proc/${pid}/stat`);
      return f ? cpuSecondsOf(f) : NaN;
    };
    for (let pass = 0; opts.cpuFlows > 0 && pass < 3; pass++) {
      for (let i = 0; i < kinds.length; i++) {
        const kind = kinds[(i + pass) % kinds.length];
        const c = spawnNode(`identity-cpu-${name}`, 'bench/clients/identity-client.ts', {});
        try {
          await c.next('ready', 30_000);
          const s0 = cpuOf(server.pid);
          const r0 = redis ? cpuOf(redis.pid) : 0;
          const block: RunMsg = { type: 'run', url, kinds: [kind], rounds: opts.cpuFlows, warmup: 0, concurrency: 1, timeoutMs: 5 * 60_000 };
          const r = await c.request<ClientResult>(block, 'result', 6 * 60_000);
          const done = r.samples[kind.name].scan.length;
          if (done === 0) throw new Error(`cpu block ${kind.name}: no flow finished (${r.firstErrors.join('; ')})`);
          cpuPerFlowMs[kind.name].server.push(((cpuOf(server.pid) - s0) * 1000) / done);
          cpuPerFlowMs[kind.name].redis.push(redis ? ((cpuOf(redis.pid) - r0) * 1000) / done : 0);
        } finally {
          await c.stop(2000);
        }
      }
    }
    const jwksFetches = jwks.hits() - hits0;

    const kindsOut: IdentityKind[] = kinds.map((k) => ({
      name: k.name,
      label: KINDS[k.name as keyof typeof KINDS],
      stats: Object.fromEntries(OPS.map((op) => [op, summarize(result.samples[k.name][op])])) as Record<Op, Summary>,
    }));
    const base = result.samples.builtin;
    const fifths = (a: number[]) => Array.from({ length: 5 }, (_, i) => a.slice(Math.floor((i * a.length) / 5), Math.floor(((i + 1) * a.length) / 5)));
    const ratios: IdentityMode['ratios'] = [];
    for (const k of kinds.slice(1)) {
      const s: KindSamples = result.samples[k.name];
      for (const op of ['scan', 'confirm', 'sum'] as const) {
        const a = summarize(s[op]);
        const b = summarize(base[op]);
        const fa = fifths(s[op]);
        const fb = fifths(base[op]);
        ratios.push({ kind: k.name, op, p50: a.p50 / b.p50, p99: a.p99 / b.p99, perFifth: fa.map((x, i) => summarize(x).p99 / summarize(fb[i]).p99) });
      }
    }
    const sumRatio = ratios.filter((r) => r.op === 'sum').map((r) => `${r.kind} ${r.p99.toFixed(2)}x`).join(', ');
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    if (opts.cpuFlows > 0) log(`  server CPU per flow, ms (median of 3 blocks of ${opts.cpuFlows}): ${kinds.map((k) => `${k.name} ${med(cpuPerFlowMs[k.name].server).toFixed(3)}`).join(', ')}`);
    log(`  done in ${measureS.toFixed(0)} s; JWKS fetched ${jwksFetches}x; errors ${result.errors}; p99 ratio (scan+confirm) ${sumRatio}; load ${loadAfter}`);
    return {
      mode: name,
      kinds: kindsOut,
      ratios,
      cpuPerFlowMs,
      jwksFetches,
      errors: result.errors,
      firstErrors: result.firstErrors,
      clientLoopP99Ms: result.loopP99Ms,
      foreignCpu: foreign,
      loadBefore,
      loadAfter,
      measureS,
    };
  } finally {
    await client?.stop(2000);
    await server?.stop();
    await redis?.stop();
  }
}

export async function runIdentity(opts: IdentityOptions): Promise<IdentityResult> {
  const keys = await appKeys();
  const jwks = await jwksServer(keys.jwks);
  const assertion = await generateKeyPair('ES256', { extractable: true });
  const assertionKeyPem = await exportPKCS8(assertion.privateKey);
  try {
    const modes: IdentityMode[] = [];
    for (const name of opts.redis ? (['embedded', 'redis'] as const) : (['embedded'] as const)) {
      modes.push(await runMode(name, opts, keys, jwks, assertionKeyPem));
    }
    const verifyUs = await verifyCosts(keys, 2000);
    log(`  jwtVerify alone, µs: ${Object.entries(verifyUs).map(([k, v]) => `${k} ${v.toFixed(0)}`).join('; ')}`);
    return { options: opts, modes, verifyUs };
  } finally {
    await jwks.close();
  }
}

/** The markdown section of one run (stdout and bench/results/latest.md). */
export function identityMarkdown(r: IdentityResult, tookS: number): string {
  const o = r.options;
  const out: string[] = [];
  const verdicts: string[] = [];
  for (const m of r.modes) {
    const base = m.kinds[0];
    const rows: string[][] = [];
    for (const op of ['scan', 'confirm', 'sum'] as const) {
      for (const k of m.kinds) {
        const s = k.stats[op];
        const rr = m.ratios.find((x) => x.kind === k.name && x.op === op);
        const met = rr ? (rr.p99 <= o.target ? 'met' : 'MISSED') : '';
        if (rr) verdicts.push(`${m.mode} ${k.name} ${op}: ${met}`);
        rows.push([
          op === 'sum' ? 'scan + confirm' : op,
          k.label,
          String(s.n),
          ms(s.p50),
          ms(s.p99),
          ms(s.max),
          rr ? ratio(k.stats[op].p50, base.stats[op].p50) : '',
          rr ? `**${ratio(k.stats[op].p99, base.stats[op].p99)}**` : '',
          rr ? rr.perFifth.map((x) => x.toFixed(2)).join(' / ') : '',
          met,
        ]);
      }
    }
    out.push(
      `#### ${m.mode === 'embedded' ? 'Embedded mode (one process, no Redis)' : 'Redis mode (one node, private redis-server)'}`,
      '',
      table(['request', 'token', 'samples', 'p50', 'p99', 'max', 'ratio p50', 'ratio p99', 'ratio p99 per fifth of the rounds', `target p99 ≤ ${o.target}x`], rows),
      '',
      `Milliseconds, one HTTP request (keep-alive) timed by the client process. \`POST /v1/qr\` (anonymous, same for every kind) as a control: p50/p99 ` +
        m.kinds.map((k) => `${k.name} ${ms(k.stats.create.p50)}/${ms(k.stats.create.p99)}`).join(', ') +
        `. JWKS requests from the server: **${m.jwksFetches}**. Errors: ${m.errors}${m.firstErrors.length ? ` (${m.firstErrors.join('; ')})` : ''}. ` +
        `Client event-loop p99 ${ms(m.clientLoopP99Ms)} ms. Measuring took ${m.measureS.toFixed(0)} s; other processes used ${(m.foreignCpu * 100).toFixed(0)}% of the CPU; ` +
        `load average (1/5/15 min) before ${m.loadBefore}, after ${m.loadAfter}.`,
      '',
    );
    if (o.cpuFlows > 0) {
      const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
      const b = med(base.name in m.cpuPerFlowMs ? m.cpuPerFlowMs[base.name].server : []);
      out.push(
        `Server CPU per flow (create + scan + confirm; all the server's threads, /proc), blocks of ${o.cpuFlows} flows of one kind, 3 passes: ` +
          m.kinds
            .map((k) => {
              const c = m.cpuPerFlowMs[k.name];
              const v = med(c.server);
              return `${k.name} **${ms(v)} ms**${k === base ? '' : ` (${ratio(v, b)}, ${v >= b ? '+' : ''}${((v - b) * 1000).toFixed(0)} µs)`} [${c.server.map((x) => x.toFixed(3)).join(', ')}]` +
                (m.mode === 'redis' ? `, redis-server ${ms(med(c.redis))} ms` : '');
            })
            .join(' · ') +
          ' (median of the 3 blocks [each block]).',
        '',
      );
    }
  }
  out.push(
    `jwtVerify alone in the bench process (mean µs, keys cached): ` +
      Object.entries(r.verifyUs)
        .map(([k, v]) => `${k} ${v.toFixed(0)}`)
        .join(' · ') +
      '.',
    '',
    `Verdict (p99 app/built-in ≤ ${o.target}x): ${verdicts.every((v) => v.endsWith(': met')) ? 'met everywhere' : `MISSED for ${verdicts.filter((v) => !v.endsWith(': met')).map((v) => v.replace(/: MISSED$/, '')).join(', ')}; met for the other ${verdicts.filter((v) => v.endsWith(': met')).length} of ${verdicts.length}`}. Benchmark took ${tookS.toFixed(0)} s.`,
    '',
  );
  return out.join('\n');
}
