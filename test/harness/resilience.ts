/**
 * Helpers for the resilience tests (test/resilience): HTTP with a record of every status seen and
 * bounded retries, phones that keep confirming through an outage, Socket.IO browsers that apply
 * the protocol's version rule and redeem, and bounded waits on conditions (never sleeps as
 * assertions).
 */
import { io as ioClient } from 'socket.io-client';
import { isFinalState, type FlowState, type Session } from '@handoff/protocol';
import { Handoff, type HandoffOptions, type QrLogin } from '@handoff/client-sdk';
import type { ClientSocket } from './clients.js';

/** Every HTTP status a test saw, by label (e.g. `POST /v1/qr/:id/confirm`). */
export class StatusLog {
  readonly seen = new Map<string, Map<number, number>>();
  /** Requests that got no HTTP answer at all (connection refused/reset), by label. */
  readonly networkErrors = new Map<string, number>();
  /** The slowest answer of each label and status (`"GET /readyz 503"`), ms. */
  readonly slowestByLabel = new Map<string, number>();

  record(label: string, status: number, ms: number): void {
    let byStatus = this.seen.get(label);
    if (!byStatus) this.seen.set(label, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    const key = `${label} ${status}`;
    this.slowestByLabel.set(key, Math.max(this.slowestByLabel.get(key) ?? 0, ms));
  }

  networkError(label: string): void {
    this.networkErrors.set(label, (this.networkErrors.get(label) ?? 0) + 1);
  }

  /** Every status seen, whatever the label. */
  statuses(): Set<number> {
    const all = new Set<number>();
    for (const byStatus of this.seen.values()) for (const status of byStatus.keys()) all.add(status);
    return all;
  }

  /** `{ "POST /v1/qr": { "201": 200 } … }`, for failure messages and the report. */
  summary(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [label, byStatus] of this.seen) out[label] = Object.fromEntries([...byStatus].map(([s, n]) => [String(s), n]));
    return out;
  }
}

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
  ms: number;
}

/** One JSON request; the status is recorded under `label`. Throws on a network error (recorded too). */
export async function request(
  log: StatusLog,
  label: string,
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(base + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 40_000),
    });
  } catch (err) {
    log.networkError(label);
    throw err;
  }
  const text = await res.text();
  const ms = performance.now() - started;
  log.record(label, res.status, ms);
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body, ms };
}

/**
 * A request retried while the answer is 503 (or there is no answer), with a small jittered
 * backoff, at most `attempts` times; resolves with the first other answer.
 */
export async function retrying(
  log: StatusLog,
  label: string,
  base: string | (() => string),
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; attempts?: number } = {},
): Promise<Answer> {
  const attempts = opts.attempts ?? 120;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await request(log, label, typeof base === 'function' ? base() : base, method, path, opts);
      if (res.status !== 503 || attempt >= attempts) return res;
    } catch (err) {
      if (attempt >= attempts) throw err;
    }
    await delay(Math.min(100 + 50 * attempt, 400) * (0.5 + Math.random()));
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `intervalMs` until it is truthy; rejects after `timeoutMs` with `what`. */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<Exclude<T, null | undefined | false | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, null | undefined | false | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(intervalMs);
  }
}

/**
 * The phone side of one QR flow over HTTP: scan, then confirm, each retried through 503s. A 409
 * whose state shows the step already happened counts as done (the first answer was lost when
 * Redis died after committing), also when the browser has redeemed meanwhile: the confirm that
 * made that possible was this phone's. Resolves with the last answer of confirm.
 */
export async function phoneConfirms(log: StatusLog, base: string | (() => string), id: string, jwt: string, pauseMs = 0): Promise<Answer> {
  const headers = { authorization: `Bearer ${jwt}` };
  const scan = await retrying(log, 'POST /v1/qr/:id/scan', base, 'POST', `/v1/qr/${id}/scan`, { headers });
  if (scan.status !== 200 && !(scan.status === 409 && ['scanned', 'confirmed', 'redeemed'].includes(scan.body?.state?.state))) {
    throw new Error(`scan answered ${scan.status} ${JSON.stringify(scan.body)}`);
  }
  if (pauseMs > 0) await delay(pauseMs);
  const confirm = await retrying(log, 'POST /v1/qr/:id/confirm', base, 'POST', `/v1/qr/${id}/confirm`, { headers });
  if (confirm.status !== 200 && !(confirm.status === 409 && ['confirmed', 'redeemed'].includes(confirm.body?.state?.state))) {
    throw new Error(`confirm answered ${confirm.status} ${JSON.stringify(confirm.body)}`);
  }
  return confirm;
}

/** A created QR flow as the browser holds it. */
export interface CreatedFlow {
  id: string;
  topic: string;
  watchToken: string;
}

/**
 * A browser watching one QR flow over a raw Socket.IO client, as a careful client would: takes a
 * state only when its version is above the last one (docs/protocol.md), redeems over the socket
 * once `confirmed` (retrying `unavailable`), and resubscribes after every (re)connect.
 */
export class SocketBrowser {
  readonly states: FlowState[] = [];
  /** Final states taken (the version rule applied): exactly one when all went well. */
  readonly finals: FlowState[] = [];
  /** Every ack error code seen (e.g. `unavailable` during an outage). */
  readonly ackErrors: string[] = [];
  /** `reconnect` hints received from the server. */
  hints = 0;
  /** Disconnect reasons, in order. */
  readonly disconnects: string[] = [];
  session: { token: string } | null = null;
  socket: ClientSocket;
  private last: FlowState | null = null;
  private redeeming = false;
  private resolveFinal!: (s: FlowState) => void;
  private redeemed: Promise<void> = Promise.resolve();
  /** Resolves with the first final state (once this browser's own redeem, if any, got its answer). */
  readonly final: Promise<FlowState> = new Promise<FlowState>((resolve) => (this.resolveFinal = resolve)).then(async (s) => {
    await this.redeemed;
    return s;
  });
  private resolveSubscribed!: () => void;
  /** Resolves once subscribed (the snapshot taken) on the current socket. */
  subscribed: Promise<void> = new Promise((resolve) => (this.resolveSubscribed = resolve));

  constructor(
    base: string,
    readonly flow: CreatedFlow,
  ) {
    this.socket = SocketBrowser.open(base);
    this.attach();
  }

  private static open(base: string): ClientSocket {
    return ioClient(base, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 1000,
      timeout: 10_000,
    }) as ClientSocket;
  }

  private attach(): void {
    const socket = this.socket;
    socket.on('connect', () => void this.subscribe(socket));
    socket.on('state', (s) => this.take(s as FlowState));
    socket.on('disconnect', (reason) => this.disconnects.push(reason));
    (socket as unknown as { on(ev: string, fn: () => void): void }).on('reconnect', () => this.hints++);
  }

  /** Switch to another node (what a load balancer would do after the old node went away). */
  moveTo(base: string): void {
    this.socket.removeAllListeners();
    this.socket.close();
    this.socket = SocketBrowser.open(base);
    this.subscribed = new Promise((resolve) => (this.resolveSubscribed = resolve));
    this.attach();
  }

  private async subscribe(socket: ClientSocket): Promise<void> {
    for (let attempt = 1; attempt <= 200 && socket.connected && !this.last?.state.match(/^(redeemed|cancelled|expired)$/); attempt++) {
      let ack: any;
      try {
        ack = await (socket as any).timeout(10_000).emitWithAck('subscribe', { topic: this.flow.topic, watchToken: this.flow.watchToken });
      } catch {
        continue;
      }
      if (ack.ok) {
        this.take(ack.state);
        this.resolveSubscribed();
        return;
      }
      this.ackErrors.push(ack.error.code);
      if (ack.error.code !== 'unavailable') return;
      await delay(100 + Math.random() * 200);
    }
  }

  private take(state: FlowState): void {
    if (this.last && state.version <= this.last.version) return; // the version rule
    this.last = state;
    this.states.push(state);
    if (isFinalState(state.state)) {
      this.finals.push(state);
      this.resolveFinal(state);
    } else if (state.state === 'confirmed' && !this.redeeming) {
      this.redeeming = true;
      this.redeemed = this.redeem();
    }
  }

  private async redeem(): Promise<void> {
    for (let attempt = 1; attempt <= 200; attempt++) {
      let ack: any;
      try {
        ack = await (this.socket as any).timeout(10_000).emitWithAck('redeem', { topic: this.flow.topic, watchToken: this.flow.watchToken });
      } catch {
        await delay(200);
        continue;
      }
      if (ack.ok) {
        this.session = ack.session;
        return;
      }
      this.ackErrors.push(ack.error.code);
      if (ack.error.code !== 'unavailable') return;
      await delay(100 + Math.random() * 200);
    }
  }

  get current(): FlowState | null {
    return this.last;
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.close();
  }
}

/**
 * `n` SDK browsers, each its own client on `opts` with one QR flow, subscribed. Their `session()`
 * calls settle to the session or the error. Every client goes into `clients` as it is made, so
 * the caller's afterAll closes them all even after a partial failure.
 */
export async function sdkQrWatchers(
  n: number,
  opts: HandoffOptions,
  clients: Handoff[],
  sessionTimeoutMs = 60_000,
): Promise<{ flows: QrLogin[]; sessions: Array<Promise<Session | Error>> }> {
  const flows: QrLogin[] = [];
  const sessions: Array<Promise<Session | Error>> = [];
  await Promise.all(
    Array.from({ length: n }, async () => {
      const client = new Handoff(opts);
      clients.push(client);
      const qr = await client.qrLogin();
      flows.push(qr);
      sessions.push(qr.session({ timeout: sessionTimeoutMs }).catch((err: Error) => err));
      await waitUntil(() => qr.subscriptionState === 'subscribed', 'the SDK subscription', 20_000);
    }),
  );
  return { flows, sessions };
}
