/**
 * Webhooks below the HTTP server: the Standard Webhooks signature (against the reference
 * library's test vector and a hand-computed HMAC), the event table, the settings, and producer +
 * worker driven by fake commits (login events: async logins are not wired end to end yet)
 * against real local receivers.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FlowKind, FlowStateName } from '@handoff/protocol';
import { ConfigError, loadConfig } from '../../server/src/config.js';
import type { FlowRecord } from '../../server/src/flows/flow-record.js';
import type { CommitListener } from '../../server/src/flows/flow-service.js';
import { toFlowState } from '../../server/src/flows/flow-state.js';
import { Metrics } from '../../server/src/observability/metrics.js';
import type { JobOptions, QueueFactory } from '../../server/src/queue/job-queue.js';
import { MemoryQueueFactory } from '../../server/src/queue/memory-queue.js';
import type { Backend } from '../../server/src/store/backend.js';
import { RedisKeys } from '../../server/src/store/keys.js';
import {
  WEBHOOK_QUEUE,
  WEBHOOK_TOLERANCE_SECONDS,
  WebhookVerificationError,
  signWebhook,
  createWebhooks,
  verifyWebhook,
  webhookEventType,
  webhookMessageId,
  webhookPayload,
  webhookKey,
  webhookSettings,
  type WebhookDeps,
  type WebhookJob,
  type Webhooks,
} from '../../server/src/webhooks/index.js';
import { attemptDelivery } from '../../server/src/webhooks/delivery.js';
import { startWebhookReceiver, type WebhookReceiver } from '../harness/webhook-receiver.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('webhook signatures (Standard Webhooks v1)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('matches the reference library test vector', () => {
    // standard-webhooks/libraries/javascript/src/webhook.test.ts, "sign function works".
    const signature = signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(signature).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('verifies a signature computed independently, for a whsec_ secret and for a raw one', () => {
    const body = JSON.stringify({ type: 'qr.confirmed', timestamp: new Date().toISOString(), data: { n: 1 } });
    const ts = Math.floor(Date.now() / 1000);
    const raw = 'a raw secret that is long enough, 24+ bytes, ünïcode';
    for (const [secret, key] of [
      [SECRET, Buffer.from(SECRET.slice(6), 'base64')],
      [raw, Buffer.from(raw, 'utf8')],
    ] as const) {
      const mac = createHmac('sha256', key).update(`msg_abc.${ts}.${body}`).digest('base64');
      const headers = { 'webhook-id': 'msg_abc', 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${mac}` };
      expect(signWebhook(secret, 'msg_abc', ts, body)).toBe(`v1,${mac}`);
      expect(verifyWebhook(secret, headers, body)).toEqual(JSON.parse(body));
      expect(verifyWebhook(secret, new Headers(headers), Buffer.from(body))).toEqual(JSON.parse(body));
      expect(verifyWebhook(secret, new Headers(headers), new Uint8Array(Buffer.from(body)))).toEqual(JSON.parse(body));
      expect(verifyWebhook(secret, { 'Webhook-Id': 'msg_abc', 'WEBHOOK-TIMESTAMP': String(ts), 'webhook-signature': [`v1,${mac}`] }, body)).toBeTruthy();
    }
  });

  describe('interop with the standardwebhooks package', () => {
    it("a delivery Handoff sends verifies with the package's Webhook.verify", async () => {
      const verified: unknown[] = [];
      const server = createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        try {
          verified.push(new Webhook(SECRET).verify(Buffer.concat(chunks), req.headers as Record<string, string>));
          res.writeHead(204).end();
        } catch (err) {
          res.writeHead(401).end((err as Error).message);
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const job: WebhookJob = { msgId: 'msg_interop', type: 'qr.confirmed', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, body: BODY };
        const result = await attemptDelivery(job, webhookKey(SECRET), 5_000);
        expect(result).toEqual({ outcome: 'delivered', status: 204 });
        expect(verified).toEqual([JSON.parse(BODY)]);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it("a delivery signed by the package verifies with Handoff's verifier, for a whsec_ secret and a raw one", () => {
      const raw = 'a raw secret that is long enough, 24+ bytes, ünïcode';
      const now = new Date();
      const ts = String(Math.floor(now.getTime() / 1000));
      for (const [secret, library] of [
        [SECRET, new Webhook(SECRET)],
        [raw, new Webhook(Buffer.from(raw, 'utf8'), { format: 'raw' })],
        [raw, new Webhook(`whsec_${Buffer.from(raw).toString('base64')}`)],
      ] as const) {
        const headers = { 'webhook-id': 'msg_lib', 'webhook-timestamp': ts, 'webhook-signature': library.sign('msg_lib', now, BODY) };
        expect(verifyWebhook(secret, headers, BODY)).toEqual(JSON.parse(BODY));
        expect(() => verifyWebhook(secret, headers, BODY.replace('failed', 'succeeded'))).toThrow(WebhookVerificationError);
      }
    });

    it('a rotated secret: a list of signatures, one per secret, verifies with either secret on both sides', () => {
      const previous = `whsec_${randomBytes(32).toString('base64')}`;
      const ts = Math.floor(Date.now() / 1000);
      const signatures = [signWebhook(previous, 'msg_rot', ts, BODY), signWebhook(SECRET, 'msg_rot', ts, BODY)].join(' ');
      const headers = { 'webhook-id': 'msg_rot', 'webhook-timestamp': String(ts), 'webhook-signature': signatures };
      for (const secret of [previous, SECRET]) {
        expect(verifyWebhook(secret, headers, BODY)).toEqual(JSON.parse(BODY));
        expect(new Webhook(secret).verify(BODY, headers)).toEqual(JSON.parse(BODY));
      }
    });
  });

  describe('rejects', () => {
    const body = '{"type":"qr.cancelled","timestamp":"2025-01-01T00:00:00.000Z","data":{}}';
    const ts = Math.floor(Date.now() / 1000);
    const good = () => ({ 'webhook-id': 'msg_x', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(SECRET, 'msg_x', ts, body) });

    it.each([
      ['a tampered body', good(), body.replace('cancelled', 'confirmed')],
      ['another secret', { ...good(), 'webhook-signature': signWebhook(`whsec_${randomBytes(32).toString('base64')}`, 'msg_x', ts, body) }, body],
      ['another webhook-id', { ...good(), 'webhook-id': 'msg_y' }, body],
      ['a missing webhook-id', { ...good(), 'webhook-id': undefined }, body],
      ['a missing signature', { ...good(), 'webhook-signature': undefined }, body],
      ['a non-integer timestamp', { ...good(), 'webhook-timestamp': `${ts}.5` }, body],
      ['a truncated signature', { ...good(), 'webhook-signature': good()['webhook-signature'].slice(0, 10) }, body],
      ['an empty v1 signature', { ...good(), 'webhook-signature': 'v1,' }, body],
      ['a right signature under another version tag', { ...good(), 'webhook-signature': good()['webhook-signature'].replace('v1,', 'v1a,') }, body],
      ['a signed body that is not JSON', { ...good(), 'webhook-signature': signWebhook(SECRET, 'msg_x', ts, 'not json') }, 'not json'],
      ['a signed empty body', { ...good(), 'webhook-signature': signWebhook(SECRET, 'msg_x', ts, '') }, ''],
    ])('%s', (_what, headers, payload) => {
      vi.useFakeTimers({ toFake: ['Date'], now: ts * 1000 });
      expect(() => verifyWebhook(SECRET, headers, payload)).toThrow(WebhookVerificationError);
    });

    it('a timestamp more than 5 minutes off either way, but not one just inside', () => {
      vi.useFakeTimers({ toFake: ['Date'], now: ts * 1000 });
      for (const offset of [-301, 301]) {
        const t = ts + offset;
        const headers = { 'webhook-id': 'msg_x', 'webhook-timestamp': String(t), 'webhook-signature': signWebhook(SECRET, 'msg_x', t, body) };
        expect(() => verifyWebhook(SECRET, headers, body)).toThrow(/timestamp too (old|new)/);
      }
      for (const offset of [-WEBHOOK_TOLERANCE_SECONDS, WEBHOOK_TOLERANCE_SECONDS]) {
        const t = ts + offset;
        const headers = { 'webhook-id': 'msg_x', 'webhook-timestamp': String(t), 'webhook-signature': signWebhook(SECRET, 'msg_x', t, body) };
        expect(verifyWebhook(SECRET, headers, body)).toBeTruthy();
      }
    });
  });

  it('accepts a list of signatures when one of them matches (secret rotation)', () => {
    const headers = good();
    headers['webhook-signature'] = [`v1,${randomBytes(32).toString('base64')}`, `v1a,${randomBytes(64).toString('base64')}`, headers['webhook-signature']].join(' ');
    expect(verifyWebhook(SECRET, headers, BODY)).toEqual(JSON.parse(BODY));

    function good() {
      const ts = Math.floor(Date.now() / 1000);
      return { 'webhook-id': 'msg_r', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(SECRET, 'msg_r', ts, BODY) };
    }
  });

  it.each([
    ['a character outside base64', `whsec_${randomBytes(32).toString('base64').slice(0, 40)} x`],
    ['base64url instead of base64', `whsec_${Buffer.from('fb'.repeat(32), 'hex').toString('base64url')}`],
    ['nothing', 'whsec_'],
  ])('WEBHOOK_SECRET with %s after whsec_ is refused at start, naming the variable (a receiver library could not read it)', (_what, secret) => {
    expect(() => loadConfig({ WEBHOOK_URLS: 'http://127.0.0.1:1/hooks', WEBHOOK_SECRET: secret })).toThrow(/^WEBHOOK_SECRET: the part after whsec_ is not valid base64$/);
  });
});
const BODY = '{"type":"login.failed","timestamp":"2025-01-01T00:00:00.000Z","data":{}}';

function record(kind: FlowKind, state: FlowStateName, extra: Partial<FlowRecord> = {}): FlowRecord {
  const now = Date.now();
  return {
    kind,
    id: randomBytes(12).toString('base64url'),
    state,
    version: 3,
    createdAt: now,
    expiresAt: now + 60_000,
    watchTokenHash: randomBytes(32).toString('hex'),
    ...extra,
  };
}

describe('webhook events', () => {
  it('are raised by exactly four transitions', () => {
    const raised: string[] = [];
    for (const kind of ['qr', 'login'] as const) {
      for (const state of ['pending', 'scanned', 'confirmed', 'redeemed', 'cancelled', 'expired', 'queued', 'processing', 'succeeded', 'failed'] as const) {
        const type = webhookEventType(kind, state);
        if (type) raised.push(`${kind}/${state} → ${type}`);
      }
    }
    expect(raised.sort()).toEqual([
      'login/failed → login.failed',
      'login/succeeded → login.succeeded',
      'qr/cancelled → qr.cancelled',
      'qr/confirmed → qr.confirmed',
    ]);
  });

  it('carry the flow and its user, never the watch-token hash, requester or scanner details', () => {
    const r = record('qr', 'confirmed', {
      userId: 'user-1',
      requester: { ip: '203.0.113.9', userAgent: 'Browser', createdAt: new Date().toISOString() },
      scannedBy: { userId: 'user-1', displayName: 'Ana', avatarUrl: null },
    });
    const at = new Date('2025-06-01T12:00:00.000Z');
    const payload = webhookPayload(r, at);
    expect(payload).toEqual({
      type: 'qr.confirmed',
      timestamp: '2025-06-01T12:00:00.000Z',
      data: { topic: `qr:${r.id}`, id: r.id, kind: 'qr', state: 'confirmed', version: 3, userId: 'user-1', account: 'builtin' },
    });
    const json = JSON.stringify(payload);
    for (const secretish of [r.watchTokenHash, '203.0.113.9', 'Ana']) expect(json).not.toContain(secretish);
    expect(webhookPayload(record('qr', 'cancelled'))?.data).not.toHaveProperty('userId');
    expect(webhookPayload(record('login', 'failed', { error: { code: 'invalid_credentials', message: 'Wrong email or password.' } }))?.data.error).toEqual({
      code: 'invalid_credentials',
      message: 'Wrong email or password.',
    });
    expect(webhookPayload(record('qr', 'scanned'))).toBeNull();
  });

  it("carry an app user's sub as userId, marked account app (ACCOUNTS=app|both)", () => {
    const payload = webhookPayload(record('qr', 'confirmed', { userId: 'app:acme-42' }));
    expect(payload?.data).toMatchObject({ userId: 'acme-42', account: 'app' });
  });

  it('have a message id per (topic, version): stable, without dots', () => {
    const id = webhookMessageId('qr:abcdefghijklmnop', 3);
    expect(id).toMatch(/^msg_[A-Za-z0-9_-]{32}$/);
    expect(webhookMessageId('qr:abcdefghijklmnop', 3)).toBe(id);
    expect(webhookMessageId('qr:abcdefghijklmnop', 4)).not.toBe(id);
    expect(webhookMessageId('login:abcdefghijklmnop', 3)).not.toBe(id);
  });
});

describe('webhook settings', () => {
  it('has the documented defaults', () => {
    expect(webhookSettings({})).toEqual({ attempts: 8, backoffMs: 1000, timeoutMs: 10_000, concurrency: 4 });
    expect(webhookSettings({ WEBHOOK_BACKOFF_MS: '50', WEBHOOK_ATTEMPTS: '3' })).toMatchObject({ backoffMs: 50, attempts: 3 });
  });

  it.each([
    ['WEBHOOK_BACKOFF_MS', 'fast'],
    ['WEBHOOK_BACKOFF_MS', '0'],
    ['WEBHOOK_ATTEMPTS', '51'],
    ['WEBHOOK_TIMEOUT_MS', '10'],
    ['WEBHOOK_CONCURRENCY', '-1'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => webhookSettings({ [name]: value })).toThrow(ConfigError);
    expect(() => webhookSettings({ [name]: value })).toThrow(new RegExp(`^${name}:`));
  });
});

/** Log lines as objects, with a wait for one. */
class LogCapture {
  readonly lines: Array<Record<string, any>> = [];
  private waiters: Array<{ match: (l: Record<string, any>) => boolean; resolve: () => void }> = [];
  readonly stream = new Writable({
    write: (chunk, _enc, done) => {
      for (const text of chunk.toString().split('\n').filter(Boolean)) {
        const line = JSON.parse(text);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(), false) : true));
      }
      done();
    },
  });

  waitFor(match: (l: Record<string, any>) => boolean, timeoutMs = 5000): Promise<void> {
    if (this.lines.some(match)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no such log line; got ${this.lines.map((l) => l.msg).join(' | ')}`)), timeoutMs);
      this.waiters.push({ match, resolve: () => (clearTimeout(t), resolve()) });
    });
  }
}

/** What webhooks are built from (config, log, metrics, an in-process queue) and fake commit listeners. */
function fakeCore(urls: string[]) {
  const config = loadConfig({ WEBHOOK_URLS: urls.join(','), WEBHOOK_SECRET: urls.length ? SECRET : '' });
  const logs = new LogCapture();
  const listeners: CommitListener[] = [];
  const factory = new MemoryQueueFactory();
  const created: string[] = [];
  const adds: Array<{ data: WebhookJob; opts?: JobOptions }> = [];
  const queues: QueueFactory = {
    create<T>(name: string) {
      created.push(name);
      const queue = factory.create<T>(name);
      const add = queue.add.bind(queue);
      queue.add = (data, opts) => {
        adds.push({ data: data as WebhookJob, opts });
        return add(data, opts);
      };
      return queue;
    },
    close: () => factory.close(),
  };
  const deps: WebhookDeps = {
    config,
    log: pino({ level: 'debug' }, logs.stream),
    backend: { mode: 'embedded', queues } as unknown as Backend,
    metrics: new Metrics(),
  };
  const flows = { onCommit: (l: CommitListener) => (listeners.push(l), () => {}) };
  // One Webhooks per process, as createCore builds it: the first call builds it with `env`.
  let webhooks: Webhooks | null | undefined;
  const built = (env: Record<string, string>) => (webhooks === undefined ? (webhooks = createWebhooks(deps, env)) : webhooks);
  return {
    deps,
    /** Producer and worker in one process (ROLE=all, embedded mode). */
    start: (env: Record<string, string>) => {
      built(env)?.produce(flows);
      built(env)?.work();
    },
    produce: (env: Record<string, string>) => built(env)?.produce(flows),
    work: (env: Record<string, string>) => built(env)?.work(),
    logs,
    created,
    adds,
    listeners,
    /** What FlowService does after a won compare-and-set. */
    commit: (r: FlowRecord) => listeners.forEach((l) => l(r, toFlowState(r))),
    count: async (event: string, outcome: string) => {
      const metric = deps.metrics.registry.getSingleMetric('handoff_webhook_deliveries_total');
      const values = (await metric?.get())?.values ?? [];
      return values.find((v) => v.labels.event === event && v.labels.outcome === outcome)?.value ?? 0;
    },
    close: () => factory.close(),
  };
}

const FAST = { WEBHOOK_BACKOFF_MS: '5' };

describe('webhook producer and worker (fake commits, real receivers)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    await Promise.all(cleanup.splice(0).map((fn) => fn()));
  });
  async function receiver(respond?: (n: number, d: any) => number | Promise<number>): Promise<WebhookReceiver> {
    const r = await startWebhookReceiver({ secret: SECRET, respond });
    cleanup.push(() => r.close());
    return r;
  }
  function core(urls: string[]) {
    const c = fakeCore(urls);
    cleanup.push(() => c.close());
    return c;
  }

  it('does nothing without WEBHOOK_URLS: no queue, no commit listener', () => {
    const c = core([]);
    c.start(FAST);
    expect(c.created).toEqual([]);
    expect(c.listeners).toHaveLength(0);
  });

  it('sends login.succeeded to every endpoint, signed, with the same webhook-id', async () => {
    const [a, b] = [await receiver(), await receiver()];
    const c = core([a.url, b.url]);
    c.start(FAST);
    c.start(FAST); // produce and work again: still one listener, one worker
    expect(c.created).toEqual([WEBHOOK_QUEUE]);
    expect(c.listeners).toHaveLength(1);

    const r = record('login', 'succeeded', { userId: 'user-42', version: 3 });
    c.commit(r);
    const [da, db] = await Promise.all([a.waitForEvent('login.succeeded', `login:${r.id}`), b.waitForEvent('login.succeeded', `login:${r.id}`)]);
    expect(da.event).toMatchObject({ type: 'login.succeeded', data: { topic: `login:${r.id}`, id: r.id, kind: 'login', state: 'succeeded', version: 3, userId: 'user-42', account: 'builtin' } });
    expect(Date.parse(da.event!.timestamp)).toBeGreaterThan(Date.now() - 10_000);
    expect(da.webhookId).toBe(webhookMessageId(`login:${r.id}`, 3));
    expect(db.webhookId).toBe(da.webhookId);
    expect(db.body).toBe(da.body);
    expect(da.headers['content-type']).toBe('application/json');
    expect(da.body).not.toContain(r.watchTokenHash);
    expect(c.adds.map((x) => x.opts)).toEqual([
      expect.objectContaining({ attempts: 8, backoffMs: 5 }),
      expect.objectContaining({ attempts: 8, backoffMs: 5 }),
    ]);
    expect(new Set(c.adds.map((x) => x.opts?.jobId)).size).toBe(2);
    // The receiver records a delivery as it answers; the worker counts once it has read the answer.
    await expect.poll(() => c.count('login.succeeded', 'delivered')).toBe(2);
  });

  it('sends login.failed with the error, and nothing for transitions that raise no event', async () => {
    const a = await receiver();
    const c = core([a.url]);
    c.start(FAST);
    for (const [kind, state] of [
      ['login', 'processing'],
      ['login', 'redeemed'],
      ['login', 'expired'],
      ['qr', 'scanned'],
      ['qr', 'redeemed'],
      ['qr', 'expired'],
    ] as const) {
      c.commit(record(kind, state));
    }
    const r = record('login', 'failed', { error: { code: 'invalid_credentials', message: 'Wrong email or password.' } });
    c.commit(r);
    const d = await a.waitForEvent('login.failed', `login:${r.id}`);
    expect(d.event!.data).toEqual({
      topic: `login:${r.id}`,
      id: r.id,
      kind: 'login',
      state: 'failed',
      version: 3,
      error: { code: 'invalid_credentials', message: 'Wrong email or password.' },
    });
    expect(c.adds).toHaveLength(1);
    expect(a.deliveries).toHaveLength(1);
  });

  it('retries a failing endpoint with the same webhook-id and body until it answers 2xx', async () => {
    const a = await receiver((n) => (n <= 2 ? 500 : 204));
    const c = core([a.url]);
    c.start(FAST);
    const r = record('qr', 'confirmed', { userId: 'u' });
    c.commit(r);
    await a.waitForEvent('qr.confirmed', `qr:${r.id}`);
    expect(a.deliveries.map((d) => [d.attempt, d.status, d.verified])).toEqual([
      [1, 500, true],
      [2, 500, true],
      [3, 204, true],
    ]);
    expect(new Set(a.deliveries.map((d) => d.webhookId)).size).toBe(1);
    expect(new Set(a.deliveries.map((d) => d.body)).size).toBe(1);
    expect(a.accepted()).toHaveLength(1);
    await expect.poll(() => c.count('qr.confirmed', 'delivered')).toBe(1);
    expect(await c.count('qr.confirmed', 'retried')).toBe(2);
  });

  it('gives up after the last attempt: logged and counted as failed', async () => {
    const a = await receiver(() => 503);
    const c = core([a.url]);
    c.start({ ...FAST, WEBHOOK_ATTEMPTS: '3' });
    const r = record('qr', 'cancelled');
    c.commit(r);
    await c.logs.waitFor((l) => l.msg === 'webhook delivery failed for good');
    expect(a.deliveries.map((d) => d.status)).toEqual([503, 503, 503]);
    expect(await c.count('qr.cancelled', 'retried')).toBe(2);
    expect(await c.count('qr.cancelled', 'failed')).toBe(1);
    const line = c.logs.lines.find((l) => l.msg === 'webhook delivery failed for good')!;
    expect(line).toMatchObject({ level: 50, event: 'qr.cancelled', attempts: 3, reason: 'HTTP 503' });
  });

  it('disables an endpoint that answers 410 Gone: no later event is queued or sent to it', async () => {
    const gone = await receiver(() => 410);
    const ok = await receiver();
    const c = core([gone.url, ok.url]);
    c.start(FAST);
    const first = record('qr', 'confirmed');
    c.commit(first);
    await c.logs.waitFor((l) => l.level === 40 && /410 Gone/.test(l.msg));
    expect(gone.deliveries).toHaveLength(1);
    expect(await c.count('qr.confirmed', 'disabled')).toBe(1);

    const second = record('qr', 'cancelled');
    c.commit(second);
    await ok.waitForEvent('qr.cancelled', `qr:${second.id}`);
    expect(gone.deliveries).toHaveLength(1);
    expect(c.adds.filter((x) => x.data.url === gone.url)).toHaveLength(1);
    expect(await c.count('qr.cancelled', 'skipped')).toBe(1);
  });

  it('drops a delivery already queued for an endpoint disabled meanwhile', async () => {
    let release!: () => void;
    let arrived!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const firstArrived = new Promise<void>((r) => (arrived = r));
    const gone = await receiver(async () => {
      arrived();
      await held;
      return 410;
    });
    const c = core([gone.url]);
    // One delivery at a time: the second event waits in the queue while the first gets its 410.
    c.start({ ...FAST, WEBHOOK_CONCURRENCY: '1' });
    c.commit(record('qr', 'confirmed'));
    const second = record('qr', 'cancelled');
    await firstArrived;
    c.commit(second);
    await new Promise<void>((r) => setImmediate(r));
    expect(c.adds).toHaveLength(2);
    release();
    await c.logs.waitFor((l) => /410 Gone/.test(l.msg));
    await expect.poll(() => c.count('qr.cancelled', 'skipped')).toBe(1);
    expect(gone.deliveries).toHaveLength(1);
  });

  it('does not follow redirects: a 3xx is a failed attempt', async () => {
    const target = await receiver();
    const redirector: Server = createServer((req, res) => {
      req.resume();
      res.writeHead(307, { location: target.url }).end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise((r) => redirector.close(r)));
    const c = core([`http://127.0.0.1:${(redirector.address() as AddressInfo).port}/hook`]);
    c.start({ ...FAST, WEBHOOK_ATTEMPTS: '1' });
    c.commit(record('qr', 'confirmed'));
    await c.logs.waitFor((l) => l.msg === 'webhook delivery failed for good');
    expect(c.logs.lines.find((l) => l.msg === 'webhook delivery failed for good')).toMatchObject({ reason: 'HTTP 307' });
    expect(target.deliveries).toHaveLength(0);
  });

  it('times out a slow endpoint and retries it', async () => {
    const a = await receiver((n) => (n === 1 ? new Promise((r) => setTimeout(() => r(204), 1000)) : 204));
    const c = core([a.url]);
    c.start({ ...FAST, WEBHOOK_TIMEOUT_MS: '100' });
    const r = record('login', 'succeeded', { userId: 'u' });
    c.commit(r);
    await a.waitFor((d) => d.attempt === 2);
    const line = c.logs.lines.find((l) => l.msg === 'webhook attempt failed; will retry');
    expect(line).toMatchObject({ reason: 'timed out after 100 ms', attempt: 1 });
    // The first attempt is recorded only when its slow answer is finally given, after the second.
    expect(a.deliveries.find((d) => d.attempt === 2)).toMatchObject({ status: 204, verified: true });
  });

  it('splits into producer (queues) and worker (delivers), as ROLE=api / ROLE=worker would', async () => {
    const a = await receiver();
    const c = core([a.url]);
    c.produce(FAST);
    const r = record('qr', 'confirmed');
    c.commit(r);
    await expect.poll(() => c.adds.length).toBe(1);
    expect(a.deliveries).toHaveLength(0);
    // The worker of the same process works the very queue the producer adds to.
    c.work(FAST);
    await a.waitForEvent('qr.confirmed', `qr:${r.id}`);
    expect(c.created).toEqual([WEBHOOK_QUEUE]);
  });
});

describe('failures that do not change an outcome are logged at debug, not swallowed', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('a commit whose disabled-endpoint set cannot be read logs why at debug and still queues the event', async () => {
    // A real Redis client on a port where nothing listens: every command fails at once.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    client.on('error', () => {});
    const c = fakeCore(['http://127.0.0.1:1/hooks']);
    c.deps.backend = { ...c.deps.backend, mode: 'redis', redis: { client }, keys: new RedisKeys('webhooks-test:') } as unknown as Backend;
    try {
      c.produce(FAST);
      c.commit(record('qr', 'confirmed', { userId: 'u1' }));
      await c.logs.waitFor((l) => l.msg === 'webhooks: disabled endpoints unreadable; queueing for every endpoint');
      const line = c.logs.lines.find((l) => l.msg === 'webhooks: disabled endpoints unreadable; queueing for every endpoint')!;
      expect(line.level).toBe(20); // debug
      expect(line).toMatchObject({ event: 'qr.confirmed', err: expect.stringMatching(/\w/) });
      await expect.poll(() => c.adds.length).toBe(1);
    } finally {
      client.disconnect();
      await c.close();
    }
  });

  it('an answer body that cannot be released is logged at debug; the delivery still counts', async () => {
    const body = new ReadableStream({
      cancel() {
        throw new Error('socket hang up');
      },
    });
    vi.spyOn(globalThis, 'fetch').mockResolvedValue(new Response(body, { status: 200 }));
    const logs = new LogCapture();
    const job: WebhookJob = { msgId: 'msg_c', type: 'qr.confirmed', url: 'http://127.0.0.1:1/hooks?token=hidden', body: BODY };
    const result = await attemptDelivery(job, webhookKey(SECRET), 1000, pino({ level: 'debug' }, logs.stream));
    expect(result).toEqual({ outcome: 'delivered', status: 200 });
    await logs.waitFor((l) => l.msg === 'webhook: the answer body could not be released');
    expect(logs.lines[0]).toMatchObject({ level: 20, webhookId: 'msg_c', endpoint: 'http://127.0.0.1:1/hooks', err: 'socket hang up' });
    expect(JSON.stringify(logs.lines)).not.toContain('hidden');
  });
});

describe('the test webhook receiver', () => {
  it('answers 401 to a tampered body or a stale timestamp, and records them as unverified', async () => {
    const hooks = await startWebhookReceiver({ secret: SECRET });
    try {
      const body = JSON.stringify({ type: 'qr.confirmed', timestamp: new Date().toISOString(), data: {} });
      const send = (ts: number, payload: string) =>
        fetch(hooks.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'webhook-id': 'msg_t', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(SECRET, 'msg_t', ts, body) },
          body: payload,
        });
      const now = Math.floor(Date.now() / 1000);
      expect((await send(now, body.replace('confirmed', 'cancelled'))).status).toBe(401);
      expect((await send(now - 301, body)).status).toBe(401);
      expect((await send(now, body)).status).toBe(204);
      expect(hooks.deliveries.map((d) => d.verified)).toEqual([false, false, true]);
      expect(hooks.deliveries[0].rejection).toMatch(/signature/);
      expect(hooks.deliveries[1].rejection).toMatch(/timestamp/);
      expect(hooks.accepted()).toHaveLength(1);
    } finally {
      await hooks.close();
    }
  });
});
