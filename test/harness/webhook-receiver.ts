/**
 * Test harness: a real HTTP endpoint that receives Handoff webhooks, on a free port on 127.0.0.1.
 *
 *   const hooks = await startWebhookReceiver({ secret, respond: (n) => (n <= 2 ? 500 : 204) });
 *   // WEBHOOK_URLS: hooks.url
 *   const d = await hooks.waitForEvent('qr.confirmed', qr.topic);
 *   await hooks.close();
 *
 * Every request is verified with `verifyWebhook` (signature, 5-minute timestamp tolerance); a
 * request that fails is answered 401 and recorded with `verified: false` (the responder is not
 * asked). A verified one is answered with what `respond` returns (default 204).
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../server/src/webhooks/signature.js';
import type { WebhookPayload } from '../../server/src/webhooks/events.js';

/** One request the receiver got. */
export interface Delivery {
  /** 1-based number of this request at this receiver. */
  n: number;
  /** 1-based number of this request among those with the same webhook-id. */
  attempt: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body. */
  body: string;
  webhookId: string | undefined;
  /** Signature and timestamp valid. */
  verified: boolean;
  /** Why verification failed. */
  rejection?: string;
  /** The parsed body, when verified. */
  event?: WebhookPayload;
  /** What the receiver answered. */
  status: number;
  receivedAt: number;
}

/** Decides the answer to a verified delivery: an HTTP status, maybe after a wait. */
export type Responder = (n: number, delivery: Delivery) => number | Promise<number>;

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hooks` (pass `path` to change the path). */
  url: string;
  /** Every request, in arrival order. */
  readonly deliveries: Delivery[];
  /** Replace the script for later requests. */
  respond: Responder;
  /** Verified deliveries answered 2xx. */
  accepted(): Delivery[];
  /** Deliveries of one event (by topic, optionally type). */
  of(topic: string, type?: string): Delivery[];
  /** Resolve with the first recorded or future delivery matching `match` (recorded as it is answered). */
  waitFor(match: (d: Delivery) => boolean, timeoutMs?: number): Promise<Delivery>;
  /** Resolve with the first accepted delivery of `type` (for `topic`, when given). */
  waitForEvent(type: string, topic?: string, timeoutMs?: number): Promise<Delivery>;
  close(): Promise<void>;
}

export interface ReceiverOptions {
  secret: string;
  respond?: Responder;
  path?: string;
}

export async function startWebhookReceiver(opts: ReceiverOptions): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const perId = new Map<string, number>();
  let waiters: Array<{ match: (d: Delivery) => boolean; resolve: (d: Delivery) => void }> = [];
  let count = 0;

  const record = (d: Delivery) => {
    deliveries.push(d);
    waiters = waiters.filter((w) => {
      if (!w.match(d)) return true;
      w.resolve(d);
      return false;
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const webhookId = typeof req.headers['webhook-id'] === 'string' ? req.headers['webhook-id'] : undefined;
    const n = ++count;
    const attempt = webhookId ? (perId.get(webhookId) ?? 0) + 1 : 1;
    if (webhookId) perId.set(webhookId, attempt);
    const delivery: Delivery = {
      n,
      attempt,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body,
      webhookId,
      verified: false,
      status: 401,
      receivedAt: Date.now(),
    };
    try {
      delivery.event = verifyWebhook<WebhookPayload>(opts.secret, req.headers, body);
      delivery.verified = true;
    } catch (err) {
      delivery.rejection = (err as Error).message;
    }
    if (delivery.verified) {
      try {
        delivery.status = await receiver.respond(n, delivery);
      } catch {
        delivery.status = 500;
      }
    }
    res.writeHead(delivery.status, { 'content-type': 'text/plain' });
    record(delivery);
    res.end(delivery.verified ? 'ok' : `rejected: ${delivery.rejection}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const waitFor = (match: (d: Delivery) => boolean, timeoutMs = 10_000): Promise<Delivery> => {
    const seen = deliveries.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        waiters = waiters.filter((w) => w.resolve !== done);
        const summary = deliveries.map((d) => `${d.event?.type ?? '?'} ${d.event?.data.topic ?? ''} → ${d.status}${d.rejection ? ` (${d.rejection})` : ''}`);
        reject(new Error(`no matching webhook delivery after ${timeoutMs} ms; got ${JSON.stringify(summary)}`));
      }, timeoutMs);
      const done = (d: Delivery) => {
        clearTimeout(t);
        resolve(d);
      };
      waiters.push({ match, resolve: done });
    });
  };

  const isAccepted = (d: Delivery) => d.verified && d.status >= 200 && d.status < 300;

  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${port}${opts.path ?? '/hooks'}`,
    deliveries,
    respond: opts.respond ?? (() => 204),
    accepted: () => deliveries.filter(isAccepted),
    of: (topic, type) => deliveries.filter((d) => d.event?.data.topic === topic && (type === undefined || d.event.type === type)),
    waitFor,
    waitForEvent: (type, topic, timeoutMs) =>
      waitFor((d) => isAccepted(d) && d.event?.type === type && (topic === undefined || d.event.data.topic === topic), timeoutMs),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return receiver;
}
