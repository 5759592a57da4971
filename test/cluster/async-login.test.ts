/**
 * Async login (issue #3): 202 with a watch token, a real job queue, positions pushed while
 * queued, the result pushed, redeemed once. Real server and worker processes, real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowState } from '@handoff/protocol';
import { ANA, BOB, SEED_USERS, startCluster, startRedisDeployment, type Cluster, type RedisDeployment, type RedisTopology } from '../harness/cluster.js';
import { connectSocketIo, emitAck, http, recordSocketIo, type ClientSocket } from '../harness/clients.js';
import { uniquePrefix } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';

const LENIENT = { LOGIN_IP_PER_MINUTE: '100000', LOGIN_MAX_FAILURES: '1000' };

function asyncLogin(base: string, body: object, prefer = 'respond-async') {
  return http(base, 'POST', '/v1/sessions', { body, headers: { prefer } });
}

describe('Prefer: respond-async (embedded)', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ name: 'embedded', redis: false, nodes: 1 }, LENIENT);
  });
  afterAll(() => cluster?.stop());

  it('answers 202 with Location, Preference-Applied, Retry-After and a queued flow', async () => {
    const res = await asyncLogin(cluster.browser, { email: ANA.email, password: ANA.password });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/flows/login:${res.body.id}`);
    expect(res.headers.get('preference-applied')).toBe('respond-async');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({ topic: `login:${res.body.id}`, state: 'queued', version: 1, position: expect.any(Number), watchToken: expect.any(String) });
    expect(res.body).not.toHaveProperty('token');

    // The Location is readable with the watch token, and the result arrives by long-poll.
    const watch = { 'watch-token': res.body.watchToken };
    let state = (await http(cluster.browser, 'GET', res.headers.get('location')!, { headers: watch })).body;
    while (state.state !== 'succeeded') {
      state = (await http(cluster.browser, 'GET', `${res.headers.get('location')}?after=${state.version}&wait=10`, { headers: watch })).body;
    }
    expect(state).toMatchObject({ state: 'succeeded', version: 3 });
    expect(state).not.toHaveProperty('position');
    const session = await http(cluster.browser, 'POST', `/v1/flows/login:${res.body.id}/session`, { headers: watch });
    expect(session).toMatchObject({ status: 200, body: { user: { email: ANA.email } } });
    expect((await http(cluster.browser, 'POST', `/v1/flows/login:${res.body.id}/session`, { headers: watch })).status).toBe(410);
  });

  it('without the header answers synchronously, as before', async () => {
    const res = await http(cluster.browser, 'POST', '/v1/sessions', { body: { email: ANA.email, password: ANA.password } });
    expect(res).toMatchObject({ status: 200, body: { token: expect.any(String), user: { email: ANA.email } } });
    expect(res.headers.get('preference-applied')).toBeNull();
  });

  it('wait=N answers with the result when it is ready in time: 200 session, or 401', async () => {
    const ok = await asyncLogin(cluster.browser, { email: ANA.email, password: ANA.password }, 'respond-async, wait=10');
    expect(ok).toMatchObject({ status: 200, body: { token: expect.any(String), user: { email: ANA.email } } });
    expect(ok.headers.get('preference-applied')).toBeNull();
    const bad = await asyncLogin(cluster.browser, { email: ANA.email, password: 'wrong-password' }, 'respond-async, wait=10');
    expect(bad).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
  });

  it('a wrong password ends failed with the reason pushed to the subscriber', async () => {
    const res = await asyncLogin(cluster.browser, { email: BOB.email, password: 'not-his-password' });
    const socket = await connectSocketIo(cluster.browser);
    try {
      const pushes = recordSocketIo(socket);
      const sub = await emitAck(socket, 'subscribe', { topic: res.body.topic, watchToken: res.body.watchToken });
      expect(sub.ok).toBe(true);
      const failed = sub.state.state === 'failed' ? sub.state : await pushes.waitForState('failed');
      expect(failed).toMatchObject({ state: 'failed', error: { code: 'invalid_credentials' } });
      expect((await http(cluster.browser, 'POST', `/v1/flows/${res.body.topic}/session`, { headers: { 'watch-token': res.body.watchToken } })).status).toBe(409);
    } finally {
      socket.close();
    }
  });

  it('rejects bad input on the async path like the sync one', async () => {
    expect((await asyncLogin(cluster.browser, { email: 42, password: 'x' })).status).toBe(400);
    expect((await asyncLogin(cluster.browser, { email: ANA.email })).status).toBe(400);
  });
});

/**
 * A private Redis deployment (one redis-server by default, or a Sentinel group or a Redis Cluster),
 * one ROLE=api node (no workers: jobs wait until a worker process is started) and the worker
 * processes a test starts; all stopped after the describe block.
 */
function useApiWithWorkers(prefixName: string, apiEnv: Record<string, string>, topology: RedisTopology = 'single') {
  let redis: RedisDeployment;
  const workers: ServerProcess[] = [];
  let env: Record<string, string> = {};
  const ctx = {
    api: undefined as unknown as ServerProcess,
    /** Start a worker process on the same Redis (`extra` adds to the shared env). */
    async startWorker(extra: Record<string, string> = {}): Promise<ServerProcess> {
      const worker = await startServerProcess({ ...env, ROLE: 'worker', ...extra });
      workers.push(worker);
      return worker;
    },
  };
  beforeAll(async () => {
    redis = await startRedisDeployment(topology);
    env = { ...redis.env, REDIS_PREFIX: uniquePrefix(prefixName), SEED_USERS, ...LENIENT, QUEUE_LOCK_MS: '1000' };
    ctx.api = await startServerProcess({ ...env, ROLE: 'api', ...apiEnv });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await ctx.api?.kill();
    await redis?.stop();
  });
  return ctx;
}

describe.each(['single', 'sentinel', 'cluster'] as const)('the login queue in Redis mode (API node + separate worker processes, %s)', (topology) => {
  // Positions uncoalesced (interval 0) so every step can be checked; coalescing: unit/login-positions.
  const cluster = useApiWithWorkers('login', { BCRYPT_COST: '12', LOGIN_POSITION_INTERVAL_MS: '0' }, topology);
  const startWorker = () => cluster.startWorker({ LOGIN_CONCURRENCY: '1' });

  it('wait=N falls back to 202 when no result comes in time', async () => {
    const res = await asyncLogin(cluster.api.url, { email: ANA.email, password: ANA.password }, 'respond-async, wait=1');
    expect(res).toMatchObject({ status: 202, body: { state: 'queued' } });
    expect(res.headers.get('preference-applied')).toBe('respond-async');
  });

  it('50 queued logins, one worker: each is pushed its own non-increasing positions, then its result', { timeout: 120_000 }, async () => {
    const logins: Array<{ topic: string; watchToken: string; good: boolean; first: number }> = [];
    for (let i = 0; i < 50; i++) {
      const good = i % 3 !== 0;
      const res = await asyncLogin(cluster.api.url, { email: i % 2 ? ANA.email : BOB.email, password: good ? (i % 2 ? ANA.password : BOB.password) : 'wrong-password' });
      expect(res.status).toBe(202);
      logins.push({ topic: res.body.topic, watchToken: res.body.watchToken, good, first: res.body.position });
    }
    // Tickets count the earlier test's job still waiting, so positions rise by one per login.
    for (let i = 1; i < logins.length; i++) expect(logins[i].first).toBe(logins[i - 1].first + 1);

    const socket: ClientSocket = await connectSocketIo(cluster.api.url);
    const byTopic = new Map<string, FlowState[]>(logins.map((l) => [l.topic, []]));
    socket.on('state', (s) => byTopic.get(s.topic)?.push(s));
    try {
      for (const l of logins) {
        const sub = await emitAck(socket, 'subscribe', { topic: l.topic, watchToken: l.watchToken });
        expect(sub).toMatchObject({ ok: true, state: { state: 'queued', position: l.first } });
      }
      await startWorker();
      const finished = () => [...byTopic.values()].every((states) => states.some((s) => s.state === 'succeeded' || s.state === 'failed'));
      await expect.poll(finished, { timeout: 60_000, interval: 100 }).toBe(true);

      for (const l of logins) {
        const states = byTopic.get(l.topic)!;
        const queued = states.filter((s) => s.state === 'queued');
        const positions = queued.map((s) => s.position!);
        // Non-increasing, all below the first, and every step down to 0 was pushed.
        for (let i = 1; i < positions.length; i++) expect(positions[i]).toBeLessThanOrEqual(positions[i - 1]);
        if (l.first > 0) expect(positions.at(-1)).toBe(0);
        expect(queued.every((s) => s.version === 1)).toBe(true);
        const after = states.filter((s) => s.state !== 'queued').map((s) => s.state);
        expect(after).toEqual(['processing', l.good ? 'succeeded' : 'failed']);
      }
    } finally {
      socket.close();
    }
  });
});

describe('stalled-job recovery (Redis mode)', () => {
  // bcrypt cost 14 makes each verification take about a second: time to kill a worker mid-job.
  const cluster = useApiWithWorkers('stall', { BCRYPT_COST: '14' });

  it('a worker killed mid-job leaves the job to another worker; the client gets exactly one final state', async () => {
    const res = await asyncLogin(cluster.api.url, { email: ANA.email, password: ANA.password });
    const socket = await connectSocketIo(cluster.api.url);
    try {
      const pushes = recordSocketIo(socket);
      expect(await emitAck(socket, 'subscribe', { topic: res.body.topic, watchToken: res.body.watchToken })).toMatchObject({ state: { state: 'queued' } });
      const victim = await cluster.startWorker();
      await pushes.waitForState('processing', 20_000);
      await victim.kill(); // SIGKILL while bcrypt runs
      expect(pushes.states.map((s) => s.state)).toEqual(['processing']);
      await cluster.startWorker();
      const final = await pushes.waitFor((s) => s.state === 'succeeded' || s.state === 'failed', 30_000);
      expect(final).toMatchObject({ state: 'succeeded', version: 3 });
      const redeem = await emitAck(socket, 'redeem', { topic: res.body.topic, watchToken: res.body.watchToken });
      expect(redeem).toMatchObject({ ok: true, session: { user: { email: ANA.email } } });
      await pushes.waitForState('redeemed');
      // The version rule applied: the second worker's 409 on `processing` may publish it again.
      expect(pushes.taken().map((s) => s.state)).toEqual(['processing', 'succeeded', 'redeemed']);
    } finally {
      socket.close();
    }
  });
});

describe('brute-force protection', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ name: 'redis', redis: true, nodes: 1 }, { LOGIN_MAX_FAILURES: '3', LOGIN_LOCKOUT_SECONDS: '600', LOGIN_IP_PER_MINUTE: '1000' });
  });
  afterAll(() => cluster?.stop());

  it('locks an account after repeated failures, the same way whether or not the account exists', async () => {
    const base = cluster.browser;
    const attempt = (email: string, password: string) => http(base, 'POST', '/v1/sessions', { body: { email, password } });
    for (const email of [BOB.email, 'nobody-here@example.com']) {
      for (let i = 0; i < 3; i++) expect((await attempt(email, 'wrong-password')).status).toBe(401);
    }
    const locked = await attempt(BOB.email, BOB.password); // even the right password
    const ghost = await attempt('nobody-here@example.com', 'whatever-password');
    for (const res of [locked, ghost]) {
      expect(res).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(500);
    }
    expect(locked.body).toEqual(ghost.body);
    // The async path is refused the same way, before anything is queued.
    expect((await asyncLogin(base, { email: BOB.email, password: BOB.password })).status).toBe(429);
    // Other accounts are unaffected.
    expect((await attempt(ANA.email, ANA.password)).status).toBe(200);
  });

  it("a successful login clears the account's earlier failures, sync or async", async () => {
    const base = cluster.browser;
    const attempt = (email: string, password: string) => http(base, 'POST', '/v1/sessions', { body: { email, password } });
    // Two failures, then a success, three times over (sync, async, sync): six failures in all but
    // never three without a success between them, so the account is never locked.
    for (const success of ['sync', 'async', 'sync']) {
      for (let i = 0; i < 2; i++) expect((await attempt(ANA.email, 'wrong-password')).status).toBe(401);
      const ok = success === 'sync'
        ? await attempt(ANA.email, ANA.password)
        : await asyncLogin(base, { email: ANA.email, password: ANA.password }, 'respond-async, wait=10');
      expect(ok.status, `the ${success} login`).toBe(200);
    }
  });
});

describe('per-IP limit', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess({ SEED_USERS, LOGIN_IP_PER_MINUTE: '5' });
  });
  afterAll(() => server?.kill());

  it('answers 429 with Retry-After once one client IP spends its budget', async () => {
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 7; i++) {
      last = await http(server.url, 'POST', '/v1/sessions', { body: { email: `user${i}@example.com`, password: 'x-password' } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
