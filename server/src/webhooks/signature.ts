import { ConfigError } from '../lib/env.js';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), symmetric scheme `v1`, made and
 * checked by the project's own library (`standardwebhooks` on npm): these are thin wrappers that
 * add what Handoff needs around it (a raw-string secret, Node's header objects, bytes bodies, a
 * strict timestamp, one error class).
 *
 * The key is the base64-decoded part after `whsec_` when the secret has that prefix, else the
 * secret's raw UTF-8 bytes. (The library base64-decodes an unprefixed secret too; give it
 * `whsec_` + base64(raw), or the raw bytes with `{ format: 'raw' }`, when the operator configured a
 * raw string.)
 */

export { WebhookVerificationError };

/** How far a `webhook-timestamp` may be from the receiver's clock, seconds: the library's fixed 5 minutes (replay protection). */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

const PREFIX = 'whsec_';

/**
 * The HMAC key of a configured secret. Throws when a `whsec_` secret is not base64 as the
 * Standard Webhooks libraries read it (a receiver could not use it).
 */
export function webhookKey(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) return Buffer.from(secret, 'utf8');
  const encoded = secret.slice(PREFIX.length);
  let valid = /^[A-Za-z0-9+/]+={0,2}$/.test(encoded);
  if (valid) {
    try {
      new Webhook(secret); // the library's own decoding: what every receiver will do
    } catch {
      valid = false;
    }
  }
  if (!valid) throw new Error('the part after whsec_ is not valid base64');
  return Buffer.from(encoded, 'base64');
}

/**
 * A signing secret read from `variable` (WEBHOOK_SECRET, CREDENTIALS_SECRET): `whsec_` + base64 a
 * receiver can decode, or any string; at least 24 bytes of key. Throws ConfigError naming the variable.
 */
export function signingSecret(raw: string, variable: string): string {
  let key: Buffer;
  try {
    key = webhookKey(raw);
  } catch (err) {
    throw new ConfigError(variable, (err as Error).message);
  }
  if (key.length < 24) throw new ConfigError(variable, 'must hold at least 24 bytes');
  return raw;
}

/** The library's signer and verifier for a configured secret, or for a key from `webhookKey`. */
function webhookOf(secret: string | Uint8Array): Webhook {
  return new Webhook(typeof secret === 'string' ? webhookKey(secret) : secret, { format: 'raw' });
}

/** The library takes a string or a Buffer (not any Uint8Array). */
function payloadOf(body: string | Uint8Array): string | Buffer {
  return typeof body === 'string' || Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** The `webhook-signature` value for one attempt (`timestamp` in Unix seconds): `v1,<base64>`. */
export function signWebhook(secret: string | Uint8Array, msgId: string, timestamp: number, body: string | Uint8Array): string {
  return webhookOf(secret).sign(msgId, new Date(timestamp * 1000), payloadOf(body));
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

/**
 * Verify a delivery with the library's `Webhook.verify` and return its parsed JSON body. Pass the
 * body exactly as received (the raw string or bytes — not re-serialized JSON). Throws
 * WebhookVerificationError when a header is missing or malformed (the timestamp must be integer
 * seconds), the timestamp is more than WEBHOOK_TOLERANCE_SECONDS from the clock, no `v1`
 * signature of the space-separated list matches, or the body is not JSON.
 */
export function verifyWebhook<T = unknown>(secret: string | Uint8Array, headers: WebhookHeaders, body: string | Uint8Array): T {
  const msgId = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signature = header(headers, 'webhook-signature');
  if (!msgId || !timestamp || !signature) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature header');
  // The library reads the timestamp with parseInt ("1700000000.5" passes): the spec says integer seconds.
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError('webhook-timestamp is not integer seconds');
  let event: unknown;
  try {
    event = webhookOf(secret).verify(payloadOf(body), { 'webhook-id': msgId, 'webhook-timestamp': timestamp, 'webhook-signature': signature });
  } catch (err) {
    if (err instanceof WebhookVerificationError) throw err;
    throw new WebhookVerificationError('body is not JSON'); // the library's JSON.parse
  }
  if (event === undefined) throw new WebhookVerificationError('body is not JSON'); // an empty body
  return event as T;
}
