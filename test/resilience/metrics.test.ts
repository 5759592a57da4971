/**
 * GET /metrics is valid Prometheus text (a strict parser: HELP/TYPE lines, sample syntax,
 * cumulative histogram buckets) and its series move as the system acts: connections and
 * subscriptions by transport, flows created/finished, push latency from another node's commit,
 * queue depth and job durations for the logins, codes and webhooks queues, HTTP requests by route
 * and status (a counter and the `http_request_duration_seconds` histogram), the Node.js process
 * metrics under their standard names, Redis errors and connection status across a Redis restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANA, SEED_USERS, login } from '../harness/cluster.js';
import { WsClient, connectSocketIo, emitAck, recordSocketIo, type ClientSocket } from '../harness/clients.js';
import { parsePrometheus, sampleSum, scrape, type Family } from '../harness/prometheus.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';
import { StatusLog, request, retrying, waitUntil, type CreatedFlow } from '../harness/resilience.js';
import { startWebhookReceiver, type WebhookReceiver } from '../harness/webhook-receiver.js';

const SECRET = 'whsec_' + Buffer.from('metrics-test-secret-0123456789').toString('base64');

describe('the Prometheus parser', () => {
  it('accepts valid text and rejects what Prometheus would', () => {
    const ok = [
      '# HELP a_total Things.',
      '# TYPE a_total counter',
      'a_total{x="1",y="a \\"q\\" \\\\ b"} 3',
      '# TYPE h histogram',
      'h_bucket{le="0.1"} 1',
      'h_bucket{le="+Inf"} 2',
      'h_sum 0.3',
      'h_count 2',
      '',
    ].join('\n');
    const families = parsePrometheus(ok);
    expect(families.get('a_total')?.samples[0].labels).toEqual({ x: '1', y: 'a "q" \\ b' });
    expect(sampleSum(families, 'h_count')).toBe(2);
    expect(() => parsePrometheus('a 1\n')).toThrow(/its TYPE/);
    expect(() => parsePrometheus('# TYPE a gauge\na{x=1} 1\n')).toThrow(/bad labels/);
    expect(() => parsePrometheus('# TYPE a gauge\na one\n')).toThrow(/bad sample value/);
    expect(() => parsePrometheus('# TYPE a gauge\n# TYPE a gauge\n')).toThrow(/second TYPE/);
    expect(() => parsePrometheus('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n')).toThrow(/cumulative/);
    expect(() => parsePrometheus('# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 1\n')).toThrow(/differs/);
  });
});

describe('GET /metrics on a two-node cluster', () => {
  let redis: RedisHandle;
  let a: ServerProcess;
  let b: ServerProcess;
  let hooks: WebhookReceiver;
  let jwt: string;
  const log = new StatusLog();

  beforeAll(async () => {
    redis = await startRedis();
    hooks = await startWebhookReceiver({ secret: SECRET });
    const env = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: uniquePrefix('metrics'),
      SEED_USERS,
      WEBHOOK_URLS: hooks.url,
      WEBHOOK_SECRET: SECRET,
      SMS_WEBHOOK_URL: `${hooks.url.replace(/\/hooks$/, '')}/sms`,
    };
    [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    jwt = await login(b.url, ANA);
  });
  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.stop();
    await hooks?.close();
  });

  it('parses as Prometheus text with HELP and TYPE for every family handoff declares', async () => {
    const res = await fetch(`${a.url}/metrics`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const families = parsePrometheus(await res.text());
    const expected: Record<string, Family['type']> = {
      handoff_connections: 'gauge',
      handoff_subscriptions: 'gauge',
      handoff_flows_created_total: 'counter',
      handoff_flows_finished_total: 'counter',
      handoff_pushes_total: 'counter',
      handoff_push_latency_seconds: 'histogram',
      handoff_resyncs_total: 'counter',
      handoff_http_requests_total: 'counter',
      handoff_queue_jobs: 'gauge',
      handoff_job_duration_seconds: 'histogram',
      handoff_redis_errors_total: 'counter',
      handoff_redis_unreplicated_total: 'counter',
      handoff_redis_connected: 'gauge',
      handoff_draining: 'gauge',
      handoff_webhook_deliveries_total: 'counter',
      http_request_duration_seconds: 'histogram',
    };
    for (const [name, type] of Object.entries(expected)) {
      expect(families.get(name)?.type, name).toBe(type);
      expect(families.get(name)?.help, name).toBeTruthy();
    }
    // Node.js process metrics under the standard names that stock Node.js dashboards query.
    const standard: Record<string, Family['type']> = {
      process_cpu_seconds_total: 'counter',
      process_resident_memory_bytes: 'gauge',
      process_start_time_seconds: 'gauge',
      nodejs_eventloop_lag_seconds: 'gauge',
      nodejs_eventloop_lag_p99_seconds: 'gauge',
      nodejs_heap_size_used_bytes: 'gauge',
      nodejs_gc_duration_seconds: 'histogram',
      nodejs_version_info: 'gauge',
    };
    for (const [name, type] of Object.entries(standard)) expect(families.get(name)?.type, name).toBe(type);
    expect([...families.keys()].filter((name) => /^handoff_(process|nodejs)_/.test(name))).toEqual([]);
    // Queue depth per queue, read from Redis at scrape time.
    for (const queue of ['logins', 'codes', 'webhooks']) {
      expect(families.get('handoff_queue_jobs')?.samples.filter((s) => s.labels.queue === queue).map((s) => s.labels.state).sort(), queue).toEqual([
        'active',
        'delayed',
        'waiting',
      ]);
    }
    for (const connection of ['command', 'pub', 'sub', 'queue', 'queue-worker']) {
      expect(sampleSum(families, 'handoff_redis_connected', { connection }), connection).toBe(1);
    }
    expect(sampleSum(families, 'handoff_draining')).toBe(0);
  });

  it('the counters move as the cluster acts', { timeout: 60_000 }, async () => {
    const before = await scrape(a.url);
    const sio = await connectSocketIo(a.url);
    const ws = await WsClient.connect(a.url);
    try {
      const flow = (await request(log, 'POST /v1/qr', a.url, 'POST', '/v1/qr')).body as CreatedFlow;
      const pushes = recordSocketIo(sio);
      expect(await emitAck(sio, 'subscribe', { topic: flow.topic, watchToken: flow.watchToken })).toMatchObject({ ok: true });
      expect(await ws.request('subscribe', { topic: flow.topic, watchToken: flow.watchToken })).toMatchObject({ ok: true });
      await request(log, 'GET /v1/flows/:topic', a.url, 'GET', `/v1/flows/qr:nope`, { headers: { 'watch-token': 'x' } });

      const during = await scrape(a.url);
      expect(sampleSum(during, 'handoff_connections', { transport: 'socket.io' })).toBe(1);
      expect(sampleSum(during, 'handoff_connections', { transport: 'websocket' })).toBe(1);
      expect(sampleSum(during, 'handoff_subscriptions', { transport: 'socket.io' })).toBe(1);
      expect(sampleSum(during, 'handoff_subscriptions', { transport: 'websocket' })).toBe(1);
      expect(sampleSum(during, 'handoff_flows_created_total', { kind: 'qr' }) - sampleSum(before, 'handoff_flows_created_total', { kind: 'qr' })).toBe(1);
      expect(sampleSum(during, 'handoff_http_requests_total', { method: 'GET', route: '/v1/flows/:topic', status: '404' })).toBeGreaterThanOrEqual(1);
      // The duration histogram: by route template and status code; ids in paths never become labels.
      const created = { method: 'POST', route: '/v1/qr', status_code: '201' };
      expect(sampleSum(during, 'http_request_duration_seconds_count', created) - sampleSum(before, 'http_request_duration_seconds_count', created)).toBe(1);
      expect(sampleSum(during, 'http_request_duration_seconds_sum', created)).toBeGreaterThan(0);
      expect(sampleSum(during, 'http_request_duration_seconds_count', { method: 'GET', route: '/v1/flows/:topic', status_code: '404' })).toBeGreaterThanOrEqual(1);
      const labelValues = [...during.values()].flatMap((f) => f.samples.flatMap((x) => Object.values(x.labels)));
      expect(labelValues.filter((v) => v.includes(flow.id) || v.includes('qr:nope'))).toEqual([]);

      // The transitions are committed on node B: node A observes the push latency from B's commit.
      const remoteBefore = sampleSum(during, 'handoff_push_latency_seconds_count', { origin: 'remote' });
      await request(log, 'POST /v1/qr/:id/scan', b.url, 'POST', `/v1/qr/${flow.id}/scan`, { headers: { authorization: `Bearer ${jwt}` } });
      await request(log, 'POST /v1/qr/:id/confirm', b.url, 'POST', `/v1/qr/${flow.id}/confirm`, { headers: { authorization: `Bearer ${jwt}` } });
      await pushes.waitForState('confirmed');
      await ws.states.waitForState('confirmed');
      const redeemed = await emitAck(sio, 'redeem', { topic: flow.topic, watchToken: flow.watchToken });
      expect(redeemed).toMatchObject({ ok: true });
      const after = await scrape(a.url);
      expect(sampleSum(after, 'handoff_push_latency_seconds_count', { origin: 'remote' }) - remoteBefore).toBe(2);
      expect(sampleSum(after, 'handoff_push_latency_seconds_count', { origin: 'local' })).toBeGreaterThanOrEqual(1); // the redeem, committed on A
      expect(sampleSum(after, 'handoff_push_latency_seconds_sum', { origin: 'remote' })).toBeLessThan(10);
      expect(sampleSum(after, 'handoff_flows_finished_total', { kind: 'qr', state: 'redeemed' })).toBe(1);
      expect(sampleSum(after, 'handoff_pushes_total', { transport: 'node' })).toBeGreaterThanOrEqual(3);

      // Jobs: an async login (logins), a code by SMS (codes), and the webhooks the transitions raised.
      const queued = await request(log, 'POST /v1/sessions (async)', a.url, 'POST', '/v1/sessions', {
        body: { email: ANA.email, password: ANA.password },
        headers: { prefer: 'respond-async' },
      });
      expect(queued.status).toBe(202);
      expect(
        (await request(log, 'POST /v1/verification-codes', a.url, 'POST', '/v1/verification-codes', { body: { channel: 'sms', to: '+15551234567', purpose: 'login' } })).status,
      ).toBe(202);
      await hooks.waitForEvent('qr.confirmed', flow.topic);
      const jobs = await waitUntil(async () => {
        const [ma, mb] = await Promise.all([scrape(a.url), scrape(b.url)]);
        const ran = (queue: string, outcome: string) =>
          sampleSum(ma, 'handoff_job_duration_seconds_count', { queue, outcome }) + sampleSum(mb, 'handoff_job_duration_seconds_count', { queue, outcome });
        return ['logins', 'codes', 'webhooks'].every((q) => ran(q, 'completed') + ran(q, 'failed') >= 1) ? ma : null;
      }, 'a job attempt timed in each queue (on either node)');
      for (const queue of ['logins', 'codes', 'webhooks']) {
        expect(jobs.get('handoff_queue_jobs')?.samples.some((x) => x.labels.queue === queue && x.labels.state === 'waiting'), queue).toBe(true);
      }
      expect(sampleSum(jobs, 'handoff_http_requests_total', { method: 'POST', route: '/v1/sessions', status: '202' })).toBe(1);
      // The scan, answered by node B: timed there under its route template.
      const onB = await scrape(b.url);
      expect(sampleSum(onB, 'http_request_duration_seconds_count', { method: 'POST', route: '/v1/qr/:id/scan', status_code: '200' })).toBe(1);
    } finally {
      sio.close();
      ws.close();
    }
    // Closed connections leave the gauges.
    await waitUntil(async () => {
      const m = await scrape(a.url);
      return sampleSum(m, 'handoff_connections') === 0 && sampleSum(m, 'handoff_subscriptions') === 0;
    }, 'the connection gauges to return to 0');
  });

  it('counts Redis errors and shows the connections down while Redis is, and up again after', async () => {
    const flow = (await request(log, 'POST /v1/qr', a.url, 'POST', '/v1/qr')).body as CreatedFlow;
    const before = await scrape(a.url);
    await redis.kill('SIGKILL');
    try {
      expect((await request(log, 'GET /v1/flows/:topic', a.url, 'GET', `/v1/flows/${flow.topic}`, { headers: { 'watch-token': flow.watchToken } })).status).toBe(503);
      const down = await waitUntil(async () => {
        const m = await scrape(a.url);
        const gone = sampleSum(m, 'handoff_redis_connected', { connection: 'command' }) === 0 && sampleSum(m, 'handoff_redis_connected', { connection: 'sub' }) === 0;
        // Reconnect attempts are refused: ioredis reports each as an `error` event.
        return gone && sampleSum(m, 'handoff_redis_errors_total', { kind: 'connection' }) > 0 ? m : null;
      }, 'the connection gauges to show Redis down, and refused reconnects counted');
      expect(sampleSum(down, 'handoff_redis_errors_total', { connection: 'command', kind: 'command' })).toBeGreaterThan(
        sampleSum(before, 'handoff_redis_errors_total', { connection: 'command', kind: 'command' }),
      );
      // A scrape never waits on Redis: the queues report no depth meanwhile.
      expect(down.get('handoff_queue_jobs')?.samples ?? []).toEqual([]);
    } finally {
      await redis.restart();
    }
    await retrying(log, 'GET /readyz', a.url, 'GET', '/readyz');
    await waitUntil(async () => {
      const m = await scrape(a.url);
      return ['command', 'pub', 'sub', 'queue', 'queue-worker'].every((connection) => sampleSum(m, 'handoff_redis_connected', { connection }) === 1);
    }, 'every Redis connection back', 20_000);
  });
});
