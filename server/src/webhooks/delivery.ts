import type { Logger } from 'pino';
import { signWebhook } from './signature.js';

/** One queued delivery: one event to one endpoint. The body is serialized once, at the commit. */
export interface WebhookJob {
  /** `webhook-id`: the same for every endpoint and every retry of this event. */
  msgId: string;
  type: string;
  url: string;
  /** The exact JSON body sent on every attempt. */
  body: string;
}

/** What one attempt came to. */
export type AttemptResult =
  | { outcome: 'delivered'; status: number }
  | { outcome: 'gone'; status: 410 }
  | { outcome: 'error'; status?: number; reason: string };

/** The user agent of every delivery. */
export const WEBHOOK_USER_AGENT = 'Handoff-Webhooks/1.0';

/**
 * POST one attempt, signed with this attempt's timestamp. 2xx = delivered; 410 = gone; any
 * other status (redirects are not followed), a network error or the timeout = error. `log`
 * (default none) hears at debug what does not change the outcome (the answer's body not released).
 */
export async function attemptDelivery(
  job: WebhookJob,
  secret: Buffer,
  timeoutMs: number,
  log?: Pick<Logger, 'debug'>,
  now: number = Date.now(),
): Promise<AttemptResult> {
  const timestamp = Math.floor(now / 1000);
  let res: Response;
  try {
    res = await fetch(job.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': WEBHOOK_USER_AGENT,
        'webhook-id': job.msgId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(secret, job.msgId, timestamp, job.body),
      },
      body: job.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return { outcome: 'error', reason: describeFetchError(err, timeoutMs) };
  }
  // The receiver's answer is not read; release the connection.
  await res.body?.cancel().catch((err: unknown) => {
    log?.debug({ webhookId: job.msgId, endpoint: endpointForLog(job.url), status: res.status, err: errorMessage(err) }, 'webhook: the answer body could not be released');
  });
  if (res.status >= 200 && res.status < 300) return { outcome: 'delivered', status: res.status };
  if (res.status === 410) return { outcome: 'gone', status: 410 };
  return { outcome: 'error', status: res.status, reason: `HTTP ${res.status}` };
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An endpoint as logged: origin and path, never the query (it may carry a token). */
export function endpointForLog(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '[invalid url]';
  }
}
