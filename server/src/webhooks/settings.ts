import { ConfigError } from '../config.js';

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

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${env[name]}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Read and validate the webhook settings; throws ConfigError naming the bad variable. */
export function webhookSettings(env: Env = process.env): WebhookSettings {
  return {
    attempts: int(env, 'WEBHOOK_ATTEMPTS', 8, 1, 50),
    backoffMs: int(env, 'WEBHOOK_BACKOFF_MS', 1000, 1, 300_000),
    timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000),
    concurrency: int(env, 'WEBHOOK_CONCURRENCY', 4, 1, 64),
  };
}
