import { createHash } from 'node:crypto';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { Core } from '../core.js';
import type { JobQueue } from '../queue/job-queue.js';
import { attemptDelivery, endpointForLog, type WebhookJob } from './delivery.js';
import { MemoryDisabledEndpoints, RedisDisabledEndpoints, type DisabledEndpoints } from './disabled-endpoints.js';
import { webhookMessageId, webhookPayload } from './events.js';
import { webhookSettings, type WebhookSettings } from './settings.js';
import { webhookKey } from './signature.js';

/** Name of the delivery queue. */
export const WEBHOOK_QUEUE = 'webhooks';

/**
 * `handoff_webhook_deliveries_total{event,outcome}` outcomes:
 * delivered (2xx), retried (an attempt failed, another follows), failed (the last attempt failed),
 * disabled (410 Gone: the endpoint is now disabled), skipped (the endpoint was disabled: the event
 * was not queued, or a queued delivery dropped), dropped (could not be queued).
 */
export type WebhookOutcome = 'delivered' | 'retried' | 'failed' | 'disabled' | 'skipped' | 'dropped';

interface WebhookContext {
  urls: string[];
  key: Buffer;
  settings: WebhookSettings;
  queue: JobQueue<WebhookJob>;
  disabled: DisabledEndpoints;
  deliveries: Counter<'event' | 'outcome'>;
  log: Logger;
  producing: boolean;
  working: boolean;
}

/**
 * One context per backend (keyed by its queue factory, which `Core` and the `Handoff` built from it
 * share), so producer and worker in one process use the same queue and the same disabled set.
 */
const contexts = new WeakMap<object, WebhookContext>();

function contextOf(core: Core, env: Record<string, string | undefined>): WebhookContext | null {
  const { webhookUrls, webhookSecret, redisPrefix } = core.config;
  if (webhookUrls.length === 0 || !webhookSecret) return null;
  let ctx = contexts.get(core.queues);
  if (ctx) return ctx;
  const settings = webhookSettings(env);
  const redis = core.backend.redis?.client;
  const name = 'handoff_webhook_deliveries_total';
  const deliveries =
    (core.metrics.registry.getSingleMetric(name) as Counter<'event' | 'outcome'> | undefined) ??
    new Counter({
      name,
      help: 'Webhook deliveries by event type and outcome (delivered, retried, failed, disabled, skipped, dropped)',
      labelNames: ['event', 'outcome'] as const,
      registers: [core.metrics.registry],
    });
  ctx = {
    urls: [...new Set(webhookUrls)],
    key: webhookKey(webhookSecret),
    settings,
    queue: core.queues.create<WebhookJob>(WEBHOOK_QUEUE),
    disabled: redis ? new RedisDisabledEndpoints(redis, `${redisPrefix}webhooks:disabled`) : new MemoryDisabledEndpoints(),
    deliveries,
    log: core.log.child({ component: 'webhooks' }),
    producing: false,
    working: false,
  };
  contexts.set(core.queues, ctx);
  return ctx;
}

/** A BullMQ-safe job id (no `:`) for one event to one endpoint; dedupes a repeated enqueue. */
function jobIdOf(msgId: string, url: string): string {
  return `${msgId}-${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
}

/**
 * Raise events from the transitions this process commits: one job per (event, endpoint) on the
 * `webhooks` queue. Run it in every process that commits transitions (API nodes and workers).
 * No WEBHOOK_URLS: does nothing.
 */
export function startWebhookProducer(core: Core, env: Record<string, string | undefined> = process.env): void {
  const ctx = contextOf(core, env);
  if (!ctx || ctx.producing) return;
  ctx.producing = true;
  core.flows.onCommit((record) => {
    const payload = webhookPayload(record);
    if (!payload) return;
    void enqueue(ctx, payload.type, webhookMessageId(payload.data.topic, payload.data.version), JSON.stringify(payload));
  });
  ctx.log.info({ endpoints: ctx.urls.map(endpointForLog) }, 'webhooks: raising events');
}

async function enqueue(ctx: WebhookContext, type: string, msgId: string, body: string): Promise<void> {
  let disabled = new Set<string>();
  try {
    disabled = await ctx.disabled.all();
  } catch (err) {
    // The store is unreachable: queue for every endpoint; delivery checks again.
    ctx.log.debug({ event: type, webhookId: msgId, err: (err as Error).message }, 'webhooks: disabled endpoints unreadable; queueing for every endpoint');
  }
  await Promise.all(
    ctx.urls.map(async (url) => {
      if (disabled.has(url)) {
        ctx.deliveries.inc({ event: type, outcome: 'skipped' });
        return;
      }
      const job: WebhookJob = { msgId, type, url, body };
      try {
        await ctx.queue.add(job, { jobId: jobIdOf(msgId, url), attempts: ctx.settings.attempts, backoffMs: ctx.settings.backoffMs });
      } catch (err) {
        ctx.deliveries.inc({ event: type, outcome: 'dropped' });
        ctx.log.error({ event: type, webhookId: msgId, endpoint: endpointForLog(url), err: (err as Error).message }, 'webhook could not be queued');
      }
    }),
  );
}

/**
 * Deliver queued events: POST, 2xx done, 410 disables the endpoint, anything else retried with
 * exponential full-jitter backoff until the attempts run out. Run it in worker processes.
 * No WEBHOOK_URLS: does nothing.
 */
export function startWebhookWorker(core: Core, env: Record<string, string | undefined> = process.env): void {
  const ctx = contextOf(core, env);
  if (!ctx || ctx.working) return;
  ctx.working = true;
  ctx.queue.work(
    async (job) => {
      const data = job.data;
      const event = data.type;
      const context = { event, webhookId: data.msgId, endpoint: endpointForLog(data.url), attempt: job.attemptsMade + 1 };
      if (await ctx.disabled.has(data.url)) {
        ctx.deliveries.inc({ event, outcome: 'skipped' });
        return;
      }
      const result = await attemptDelivery(data, ctx.key, ctx.settings.timeoutMs, ctx.log);
      if (result.outcome === 'delivered') {
        ctx.deliveries.inc({ event, outcome: 'delivered' });
        ctx.log.debug({ ...context, status: result.status }, 'webhook delivered');
        return;
      }
      if (result.outcome === 'gone') {
        const newly = await ctx.disabled.add(data.url);
        ctx.deliveries.inc({ event, outcome: 'disabled' });
        if (newly) ctx.log.warn({ ...context, status: 410 }, 'webhook endpoint answered 410 Gone: disabled, it receives no more events');
        return;
      }
      if (job.attemptsMade + 1 < job.attempts) {
        ctx.deliveries.inc({ event, outcome: 'retried' });
        ctx.log.info({ ...context, reason: result.reason }, 'webhook attempt failed; will retry');
      }
      throw new Error(result.reason);
    },
    {
      concurrency: ctx.settings.concurrency,
      onFailed: (job, err) => {
        ctx.deliveries.inc({ event: job.data.type, outcome: 'failed' });
        ctx.log.error(
          { event: job.data.type, webhookId: job.data.msgId, endpoint: endpointForLog(job.data.url), attempts: job.attemptsMade, reason: err.message },
          'webhook delivery failed for good',
        );
      },
    },
  );
}

/** Producer and worker in one process (ROLE=all, embedded mode). No WEBHOOK_URLS: does nothing. */
export function startWebhooks(core: Core, env: Record<string, string | undefined> = process.env): void {
  startWebhookProducer(core, env);
  startWebhookWorker(core, env);
}
