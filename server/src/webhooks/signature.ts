import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), symmetric scheme `v1`:
 * `webhook-signature: v1,<base64 HMAC-SHA256(key, "${webhook-id}.${webhook-timestamp}.${body}")>`.
 *
 * The key is the base64-decoded part after `whsec_` when the secret has that prefix, else the
 * secret's raw UTF-8 bytes. (The reference libraries base64-decode an unprefixed secret too;
 * give them `whsec_` + base64(raw) when the operator configured a raw string.)
 *
 * This file depends on nothing but node:crypto, so receivers may copy it as is.
 */

/** How far a `webhook-timestamp` may be from the receiver's clock, seconds (replay protection). */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

/** The HMAC key of a configured secret. */
export function webhookKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

function hmac(key: Buffer, msgId: string, timestamp: string | number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${msgId}.${timestamp}.`).update(body).digest();
}

/** The `webhook-signature` value for one attempt: `v1,<base64>`. */
export function signWebhook(secret: string | Buffer, msgId: string, timestamp: number, body: string | Uint8Array): string {
  const key = typeof secret === 'string' ? webhookKey(secret) : secret;
  return `v1,${hmac(key, msgId, timestamp, body).toString('base64')}`;
}

/** Thrown by `verifyWebhook`; `message` says what was wrong (never the expected signature). */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** Fetch `Headers`, or Node's `IncomingHttpHeaders` / any record (names matched case-insensitively). */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') {
    return (headers as Headers).get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

export interface VerifyOptions {
  /** Allowed clock difference, seconds (default 300). */
  toleranceSeconds?: number;
  /** The receiver's current time, ms (default Date.now()). */
  now?: number;
}

/**
 * Verify a delivery and return its parsed JSON body. Pass the body exactly as received (the raw
 * string or bytes — not re-serialized JSON). Throws WebhookVerificationError when a header is
 * missing or malformed, the timestamp is more than `toleranceSeconds` away from now, no `v1`
 * signature matches (constant-time comparison), or the body is not JSON.
 */
export function verifyWebhook<T = unknown>(
  secret: string | Buffer,
  headers: WebhookHeaders,
  body: string | Uint8Array,
  opts: VerifyOptions = {},
): T {
  const msgId = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!msgId || !timestamp || !signatures) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature header');
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError('webhook-timestamp is not integer seconds');
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  const tolerance = opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(timestamp)) > tolerance) throw new WebhookVerificationError('webhook-timestamp is too far from now');

  const key = typeof secret === 'string' ? webhookKey(secret) : secret;
  const expected = hmac(key, msgId, timestamp, body);
  const matched = signatures.split(' ').some((entry) => {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') return false;
    const given = Buffer.from(entry.slice(comma + 1), 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matched) throw new WebhookVerificationError('no matching v1 signature');

  try {
    return JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8')) as T;
  } catch {
    throw new WebhookVerificationError('body is not JSON');
  }
}
