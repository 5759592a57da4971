import type { Logger } from 'pino';
import { ConfigError, envInt, envUrl } from '../lib/env.js';
import { HandoffError } from '../errors.js';
import { randomToken } from '../lib/random-token.js';
import { endpointForLog } from '../webhooks/delivery.js';
import { signWebhook, signingSecret, webhookKey } from '../webhooks/signature.js';
import type { Principal } from './principal.js';

/**
 * Passwords checked by the app in front (contract section 7, `CREDENTIALS_URL`): Handoff POSTs
 * `{"login","password"}` to the app, signed with Standard Webhooks headers, and the app answers
 * whether they are right. The password lives only in the request body: never in a log line, an
 * error message or a thrown error's properties.
 */

/** Where and how to ask the app. */
export interface CredentialsOptions {
  /** The app's endpoint, http(s) (CREDENTIALS_URL). */
  url: string;
  /** Standard Webhooks signing secret: `whsec_` + base64, or any string of 24+ bytes (CREDENTIALS_SECRET). */
  secret: string;
  /** Longest wait for the whole answer, body included, ms (CREDENTIALS_TIMEOUT_MS, default 5000). */
  timeoutMs: number;
  /** Largest answer body read, bytes (default 64 KiB); a larger one is not read further. */
  maxBodyBytes?: number;
}

/** Default of `CredentialsOptions.timeoutMs`. */
export const CREDENTIALS_TIMEOUT_MS = 5000;
/** Default of `CredentialsOptions.maxBodyBytes`: 64 KiB. */
export const CREDENTIALS_MAX_BODY_BYTES = 64 * 1024;
/** The user agent of every check. */
export const CREDENTIALS_USER_AGENT = 'Handoff-Credentials/1.0';

/** Longest accepted `user.id`, characters. */
const MAX_ID = 255;
/** Longest accepted `user.displayName`, characters. */
const MAX_DISPLAY_NAME = 100;
/** Longest `user.avatarUrl` kept, characters (a longer one becomes null). */
const MAX_AVATAR_URL = 2048;

type Env = Record<string, string | undefined>;

/**
 * CREDENTIALS_URL (http(s) URL), CREDENTIALS_SECRET (required with the URL; Standard Webhooks
 * secret format as WEBHOOK_SECRET: whsec_ base64 or a string of >= 24 bytes),
 * CREDENTIALS_TIMEOUT_MS (default 5000, 100–60000); null when CREDENTIALS_URL is unset;
 * ConfigError naming the variable otherwise.
 */
export function credentialsOptionsFromEnv(env: Env): CredentialsOptions | null {
  const url = envUrl(env, 'CREDENTIALS_URL', ['http:', 'https:']);
  if (!url) return null;
  const parsed = new URL(url);
  // fetch refuses such URLs, and a secret has no place in a URL: the signature authenticates Handoff.
  if (parsed.username || parsed.password) {
    throw new ConfigError('CREDENTIALS_URL', 'must not carry a user name or password (requests are signed with CREDENTIALS_SECRET)');
  }
  const secret = env.CREDENTIALS_SECRET?.trim();
  if (!secret) throw new ConfigError('CREDENTIALS_SECRET', 'is required when CREDENTIALS_URL is set');
  return { url, secret: signingSecret(secret, 'CREDENTIALS_SECRET'), timeoutMs: envInt(env, 'CREDENTIALS_TIMEOUT_MS', CREDENTIALS_TIMEOUT_MS, 100, 60_000) };
}

/** Why a check got no usable answer (logged; never shown to clients, never holds the password). */
class NoAnswer extends Error {
  constructor(
    readonly reason: string,
    readonly status?: number,
  ) {
    super(reason);
  }
}

/** Asks the app whether a password is right (`CREDENTIALS_URL`). One instance per process. */
export class CredentialsClient {
  private readonly key: Buffer;
  private readonly endpoint: string;
  private readonly maxBodyBytes: number;

  constructor(
    private readonly opts: CredentialsOptions,
    private readonly log?: Pick<Logger, 'debug' | 'warn'>,
  ) {
    this.key = webhookKey(opts.secret);
    this.endpoint = endpointForLog(opts.url);
    this.maxBodyBytes = opts.maxBodyBytes ?? CREDENTIALS_MAX_BODY_BYTES;
  }

  /**
   * Ask the app whether `password` is right for `login`: POST {"login","password"} JSON signed with Standard Webhooks
   * headers (webhook-id, webhook-timestamp, webhook-signature — reuse server/src/webhooks/signature.ts signWebhook /
   * the `standardwebhooks` package). 200 {"ok":true,"user":{"id","displayName"?,"avatarUrl"?}} → the Principal
   * {kind:'app', id, displayName: displayName ?? id, avatarUrl ?? null}; 200 {"ok":false} → null (wrong credentials);
   * anything else (other status, non-JSON, a body over maxBodyBytes — stop reading there, a redirect — never followed,
   * a malformed user, no answer within timeoutMs, connection refused) → throws HandoffError('unavailable').
   */
  async check(login: string, password: string): Promise<Principal | null> {
    const msgId = `msg_${randomToken()}`;
    try {
      const answer = await this.ask(msgId, JSON.stringify({ login, password }));
      const principal = principalOf(answer);
      this.log?.debug({ endpoint: this.endpoint, webhookId: msgId, ok: principal !== null }, 'credentials checked by the app');
      return principal;
    } catch (err) {
      const reason = err instanceof NoAnswer ? err.reason : describeFetchError(err, this.opts.timeoutMs);
      const status = err instanceof NoAnswer ? err.status : undefined;
      this.log?.warn({ endpoint: this.endpoint, webhookId: msgId, status, reason }, 'credentials check: no usable answer from the app');
      // A fresh error: nothing of the request (the body holds the password) travels with it.
      throw new HandoffError('unavailable', 'The password check is unavailable; retry shortly.');
    }
  }

  /** POST the signed body; the parsed JSON of a 200 answer read within the byte cap, else NoAnswer. */
  private async ask(msgId: string, body: string): Promise<unknown> {
    const timestamp = Math.floor(Date.now() / 1000);
    const res = await fetch(this.opts.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': CREDENTIALS_USER_AGENT,
        'webhook-id': msgId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(this.key, msgId, timestamp, body),
      },
      body,
      redirect: 'manual',
      // Covers the body too: a stalled body rejects the read below.
      signal: AbortSignal.timeout(this.opts.timeoutMs),
    });
    if (res.status !== 200) {
      void res.body?.cancel().catch(() => {});
      throw new NoAnswer(`HTTP ${res.status}`, res.status);
    }
    const declared = Number(res.headers.get('content-length'));
    if (declared > this.maxBodyBytes) {
      void res.body?.cancel().catch(() => {});
      throw new NoAnswer(`answer of ${declared} bytes, over ${this.maxBodyBytes}`, 200);
    }
    const bytes = await readCapped(res.body, this.maxBodyBytes);
    if (bytes === null) throw new NoAnswer(`answer over ${this.maxBodyBytes} bytes`, 200);
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
    } catch {
      throw new NoAnswer('answer is not JSON', 200);
    }
  }
}

/** The body's bytes, or null (and the stream cancelled, the connection dropped) once past `max`. */
async function readCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array | null> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks, size);
    size += value.byteLength;
    if (size > max) {
      void reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
}

/** `{ok:true,user}` → the Principal; `{ok:false}` → null; anything else → NoAnswer. */
function principalOf(answer: unknown): Principal | null {
  if (!isObject(answer) || typeof answer.ok !== 'boolean') throw new NoAnswer('answer is not {"ok":true,"user":{…}} or {"ok":false}', 200);
  if (!answer.ok) return null;
  const user = answer.user;
  if (!isObject(user)) throw new NoAnswer('answer has no user object', 200);
  const { id, displayName, avatarUrl } = user;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID) {
    throw new NoAnswer(`user.id is not a string of 1 to ${MAX_ID} characters`, 200);
  }
  if (displayName !== undefined && displayName !== null && (typeof displayName !== 'string' || displayName.length > MAX_DISPLAY_NAME)) {
    throw new NoAnswer(`user.displayName is not a string of at most ${MAX_DISPLAY_NAME} characters`, 200);
  }
  return {
    kind: 'app',
    id,
    displayName: typeof displayName === 'string' && displayName.trim() !== '' ? displayName : id,
    avatarUrl: httpUrlOrNull(avatarUrl),
  };
}

/** An http(s) URL as given, else null (no `javascript:`, `data:` or other schemes reach a page). */
function httpUrlOrNull(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > MAX_AVATAR_URL) return null;
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:' ? value : null;
  } catch {
    return null;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A fetch failure in a few words: the timeout, or the socket error code (ECONNREFUSED, …). */
function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (typeof cause?.code === 'string') return cause.code;
    return err.name === 'TypeError' ? 'request failed' : err.name;
  }
  return 'request failed';
}
