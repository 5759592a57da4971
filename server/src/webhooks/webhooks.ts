import { createHash } from 'node:crypto';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { FlowRecord } from '../flows/flow-record.js';
import type { FlowService } from '../flows/flow-service.js';
import type { Metrics } from '../observability/metrics.js';
import type { Backend } from '../store/backend.js';
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

/** What the webhooks are built from (core.ts passes it). */
export interface WebhookDeps {
  config: Config;
  log: Logger;
  backend: Backend;
  metrics: Metrics;
}

/**
 * Webhooks of one process: the producer raises events from the transitions this process commits
 * (`produce`), the worker delivers queued events (`work`). Both share one queue and one set of
 * disabled endpoints. Built once per process by `createWebhooks`.
 */
export class Webhooks {
  private readonly urls: string[];
  private readonly key: Buffer;
  private readonly queue: JobQueue<WebhookJob>;
  private readonly disabled: DisabledEndpoints;
  private readonly deliveries: Counter<'event' | 'outcome'>;
  private readonly log: Logger;
  private producing = false;
  private working = false;

  constructor(
    deps: WebhookDeps,
    /** Endpoints and signing secret (WEBHOOK_URLS, WEBHOOK_SECRET). */
    endpoints: { urls: string[]; secret: string },
    readonly settings: WebhookSettings,
  ) {
    const { backend } = deps;
    this.urls = [...new Set(endpoints.urls)];
    this.key = webhookKey(endpoints.secret);
    this.queue = backend.queues.create<WebhookJob>(WEBHOOK_QUEUE);
    const redis = backend.redis?.client;
    this.disabled = redis ? new RedisDisabledEndpoints(redis, backend.keys) : new MemoryDisabledEndpoints();
    this.deliveries = new Counter({
      name: 'handoff_webhook_deliveries_total',
      help: 'Webhook deliveries by event type and outcome (delivered, retried, failed, disabled, skipped, dropped)',
      labelNames: ['event', 'outcome'] as const,
      registers: [deps.metrics.registry],
    });
    this.log = deps.log.child({ component: 'webhooks' });
  }

  /**
   * Raise events from the transitions `flows` commits: one job per (event, endpoint) on the
   * `webhooks` queue. Every process that commits transitions (API nodes and workers) runs it.
   */
  produce(flows: Pick<FlowService, 'onCommit'> & Partial<Pick<FlowService, 'onCreate'>>): void {
    if (this.producing) return;
    this.producing = true;
    const raise = (record: FlowRecord) => {
      const payload = webhookPayload(record);
      if (!payload) return;
      // After the current request's answer is out (setImmediate runs after this I/O turn): an event
      // costs the request that raised it nothing, so an answer's timing tells nothing of it (an
      // approval for a known login raises approval.requested, an unknown one nothing).
      setImmediate(() => void this.enqueue(payload.type, webhookMessageId(payload.data.topic, payload.data.version), JSON.stringify(payload)));
    };
    flows.onCommit(raise);
    // approval.requested is raised by the creation itself (version 1), not by a transition.
    flows.onCreate?.(raise);
    this.log.info({ endpoints: this.urls.map(endpointForLog) }, 'webhooks: raising events');
  }

  private async enqueue(type: string, msgId: string, body: string): Promise<void> {
    let disabled = new Set<string>();
    try {
      disabled = await this.disabled.all();
    } catch (err) {
      // The store is unreachable: queue for every endpoint; delivery checks again.
      this.log.debug({ event: type, webhookId: msgId, err: (err as Error).message }, 'webhooks: disabled endpoints unreadable; queueing for every endpoint');
    }
    await Promise.all(
      this.urls.map(async (url) => {
        if (disabled.has(url)) {
          this.deliveries.inc({ event: type, outcome: 'skipped' });
          return;
        }
        const job: WebhookJob = { msgId, type, url, body };
        try {
          await this.queue.add(job, { jobId: jobIdOf(msgId, url), attempts: this.settings.attempts, backoffMs: this.settings.backoffMs });
        } catch (err) {
          this.deliveries.inc({ event: type, outcome: 'dropped' });
          this.log.error({ event: type, webhookId: msgId, endpoint: endpointForLog(url), err: (err as Error).message }, 'webhook could not be queued');
        }
      }),
    );
  }

  /**
   * Deliver queued events: POST, 2xx done, 410 disables the endpoint, anything else retried with
   * exponential full-jitter backoff until the attempts run out. Runs where the queue workers run.
   */
  work(): void {
    if (this.working) return;
    this.working = true;
    this.queue.work(
      async (job) => {
        const data = job.data;
        const event = data.type;
        const context = { event, webhookId: data.msgId, endpoint: endpointForLog(data.url), attempt: job.attemptsMade + 1 };
        if (await this.disabled.has(data.url)) {
          this.deliveries.inc({ event, outcome: 'skipped' });
          return;
        }
        const result = await attemptDelivery(data, this.key, this.settings.timeoutMs, this.log);
        if (result.outcome === 'delivered') {
          this.deliveries.inc({ event, outcome: 'delivered' });
          this.log.debug({ ...context, status: result.status }, 'webhook delivered');
          return;
        }
        if (result.outcome === 'gone') {
          const newly = await this.disabled.add(data.url);
          this.deliveries.inc({ event, outcome: 'disabled' });
          if (newly) this.log.warn({ ...context, status: 410 }, 'webhook endpoint answered 410 Gone: disabled, it receives no more events');
          return;
        }
        if (job.attemptsMade + 1 < job.attempts) {
          this.deliveries.inc({ event, outcome: 'retried' });
          this.log.info({ ...context, reason: result.reason }, 'webhook attempt failed; will retry');
        }
        throw new Error(result.reason);
      },
      {
        concurrency: this.settings.concurrency,
        onFailed: (job, err) => {
          this.deliveries.inc({ event: job.data.type, outcome: 'failed' });
          this.log.error(
            { event: job.data.type, webhookId: job.data.msgId, endpoint: endpointForLog(job.data.url), attempts: job.attemptsMade, reason: err.message },
            'webhook delivery failed for good',
          );
        },
      },
    );
  }
}

/**
 * The webhooks of this process, or null without WEBHOOK_URLS (or WEBHOOK_SECRET). The delivery
 * settings are read from `env` here, at start (a bad value throws ConfigError naming it).
 */
export function createWebhooks(deps: WebhookDeps, env: Record<string, string | undefined> = process.env): Webhooks | null {
  const { webhookUrls, webhookSecret } = deps.config;
  if (webhookUrls.length === 0 || !webhookSecret) return null;
  return new Webhooks(deps, { urls: webhookUrls, secret: webhookSecret }, webhookSettings(env));
}

/** A BullMQ-safe job id (no `:`) for one event to one endpoint; dedupes a repeated enqueue. */
function jobIdOf(msgId: string, url: string): string {
  return `${msgId}-${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
}
