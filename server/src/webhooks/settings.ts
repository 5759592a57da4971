import { envInt } from '../lib/env.js';

/** Delivery tuning read from the environment (operator-only; the endpoints come from Config). */
export interface WebhookSettings {
  /** Attempts per (event, endpoint), the first included (WEBHOOK_ATTEMPTS, default 8, 1–50). */
  attempts: number;
  /** Base delay of the exponential full-jitter backoff, ms (WEBHOOK_BACKOFF_MS, default 1000, 1–300000). */
  backoffMs: number;
  /** Per-request timeout, ms (WEBHOOK_TIMEOUT_MS, default 10000, 100–60000). */
  timeoutMs: number;
  /** Deliveries one worker process makes at once (WEBHOOK_CONCURRENCY, default 4, 1–64). */
  concurrency: number;
}

/** Read and validate the webhook settings; throws ConfigError naming the bad variable. */
export function webhookSettings(env: Record<string, string | undefined> = process.env): WebhookSettings {
  return {
    attempts: envInt(env, 'WEBHOOK_ATTEMPTS', 8, 1, 50),
    backoffMs: envInt(env, 'WEBHOOK_BACKOFF_MS', 1000, 1, 300_000),
    timeoutMs: envInt(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000),
    concurrency: envInt(env, 'WEBHOOK_CONCURRENCY', 4, 1, 64),
  };
}
