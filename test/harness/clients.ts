import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import type { ClientToServerEvents, FlowState, ServerToClientEvents } from '@handoff/protocol';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** JSON over fetch: status, headers and parsed body. */
export async function http(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...opts.headers };
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
  if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body: payload });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (e.g. SVG)
  }
  return { status: res.status, headers: res.headers, body };
}

/** A connected Socket.IO client (websocket transport unless told otherwise). */
export async function connectSocketIo(
  base: string,
  opts: { token?: string; transports?: ('websocket' | 'polling')[] } = {},
): Promise<ClientSocket> {
  const socket: ClientSocket = ioClient(base, {
    transports: opts.transports ?? ['websocket'],
    auth: opts.token ? { token: opts.token } : {},
    reconnection: false,
    forceNew: true,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
  return socket;
}

/** Emit with an ack and resolve with the ack. */
export function emitAck<T = any>(socket: ClientSocket, event: string, payload: unknown): Promise<T> {
  return (socket as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<T> } })
    .timeout(10_000)
    .emitWithAck(event, payload);
}

/** Collects `state` pushes and lets a test wait for one that matches. */
export class StateRecorder {
  readonly states: FlowState[] = [];
  private waiters: Array<{ match: (s: FlowState) => boolean; resolve: (s: FlowState) => void }> = [];

  push(state: FlowState): void {
    this.states.push(state);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(state)) return true;
      w.resolve(state);
      return false;
    });
  }

  /**
   * The states as a client following the version rule takes them: per topic, a version not newer
   * than the last one taken is dropped (a republished copy, a resync, a snapshot after a push).
   */
  taken(): FlowState[] {
    const last = new Map<string, number>();
    return this.states.filter((s) => {
      if (s.version <= (last.get(s.topic) ?? 0)) return false;
      last.set(s.topic, s.version);
      return true;
    });
  }

  /** Resolve with the first recorded or future state matching `match`. */
  waitFor(match: (s: FlowState) => boolean, timeoutMs = 10_000): Promise<FlowState> {
    const seen = this.states.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching state; saw ${JSON.stringify(this.states.map((s) => s.state))}`)), timeoutMs);
      this.waiters.push({ match, resolve: (s) => (clearTimeout(t), resolve(s)) });
    });
  }

  /** Resolve with the state pushed when the flow reaches `state`. */
  waitForState(state: string, timeoutMs?: number): Promise<FlowState> {
    return this.waitFor((s) => s.state === state, timeoutMs);
  }
}

/** Record a Socket.IO client's pushes. */
export function recordSocketIo(socket: ClientSocket): StateRecorder {
  const rec = new StateRecorder();
  socket.on('state', (s) => rec.push(s as FlowState)); // flow subscriptions; user-channel pushes are ApprovalRequests
  return rec;
}

/** A plain WebSocket client speaking the /v1/ws JSON protocol. */
export class WsClient {
  readonly states = new StateRecorder();
  private nextRef = 1;
  private pending = new Map<string, (reply: any) => void>();
  private unreferenced: Array<(reply: any) => void> = [];
  closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'state') {
        const { type: _t, ...state } = frame;
        this.states.push(state);
      } else if (frame.type === 'reply') {
        if (frame.ref === null) return void this.unreferenced.shift()?.(frame);
        const resolve = this.pending.get(frame.ref);
        if (resolve) {
          this.pending.delete(frame.ref);
          resolve(frame);
        }
      }
    });
  }

  static async connect(base: string, headers: Record<string, string> = {}): Promise<WsClient> {
    const socket = new WebSocket(base.replace(/^http/, 'ws') + '/v1/ws', { headers });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    });
    return new WsClient(socket);
  }

  /** Send a frame with a fresh ref and resolve with its reply. */
  request(type: string, fields: Record<string, unknown> = {}): Promise<any> {
    const ref = `r${this.nextRef++}`;
    return new Promise((resolve) => {
      this.pending.set(ref, resolve);
      this.socket.send(JSON.stringify({ type, ref, ...fields }));
    });
  }

  /** Send raw text (or bytes) and resolve with the next reply that carries no ref. */
  sendRaw(text: string | Buffer): Promise<any> {
    return new Promise((resolve) => {
      this.unreferenced.push(resolve);
      this.socket.send(text);
    });
  }

  close(): void {
    this.socket.close();
  }
}
