/**
 * A stand-in for socket.io-client's socket, for unit tests of the SDK's own logic (version rule,
 * resubscribe, cleanup). It is no model of the server: each test scripts what the "server" acks.
 */
import type { FlowState } from '@handoff/protocol';
import type { HandoffSocket, SocketFactory, SocketFactoryOptions } from '@handoff/client-sdk';

type Fn = (...args: any[]) => void;

export interface Emitted {
  event: string;
  payload: any;
  ack?: (res: unknown) => void;
}

export class FakeSocket {
  /** What the SDK emitted (non-enumerable: a real socket keeps no such log, so inspect() must not show it). */
  declare readonly emitted: Emitted[];
  connected = false;
  disconnectCalls = 0;
  private readonly listeners = new Map<string, Set<Fn>>();

  constructor(
    readonly url: string,
    readonly options: SocketFactoryOptions,
    private readonly io: FakeIo,
  ) {
    Object.defineProperty(this, 'emitted', { value: [], enumerable: false });
  }

  on(event: string, fn: Fn): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return this;
  }

  off(event: string, fn: Fn): this {
    this.listeners.get(event)?.delete(fn);
    return this;
  }

  emit(event: string, payload: unknown, ack?: (res: unknown) => void): this {
    const e = { event, payload, ack };
    this.emitted.push(e);
    this.io.onEmit(this, e);
    return this;
  }

  connect(): this {
    queueMicrotask(() => this.io.onConnect(this));
    return this;
  }

  disconnect(): this {
    this.disconnectCalls++;
    this.connected = false;
    return this;
  }

  listenerCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  /** Fire a socket event at the SDK, as socket.io-client would. */
  fire(event: string, ...args: unknown[]): void {
    if (event === 'connect') this.connected = true;
    if (event === 'disconnect') this.connected = false;
    for (const fn of [...(this.listeners.get(event) ?? [])]) fn(...args);
  }

  /** The server pushes a state. */
  push(state: FlowState): void {
    this.fire('state', state);
  }
}

/** The `io` factory: records every socket; each test decides how connects and emits are answered. */
export class FakeIo {
  readonly sockets: FakeSocket[] = [];
  /** How a connect attempt ends: accepted by default. */
  onConnect: (socket: FakeSocket) => void = (socket) => socket.fire('connect');
  /** What the "server" does with an emit; by default nothing (no ack). */
  onEmit: (socket: FakeSocket, e: Emitted) => void = () => {};
  private waiters: Array<{ match: (s: FakeSocket, e: Emitted) => boolean; resolve: (e: Emitted) => void }> = [];

  readonly factory: SocketFactory = (url, options) => {
    const socket = new FakeSocket(url, options, this);
    this.sockets.push(socket);
    return socket as unknown as HandoffSocket;
  };

  get last(): FakeSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (!s) throw new Error('no socket yet');
    return s;
  }

  /** Resolve with the next emit of `event` (checks the ones already made first). */
  nextEmit(event: string, after = 0): Promise<Emitted & { socket: FakeSocket }> {
    const all = this.sockets.flatMap((socket) => socket.emitted.map((e) => ({ ...e, socket })));
    const seen = all.filter((e) => e.event === event);
    if (seen.length > after) return Promise.resolve(seen[after]);
    let count = seen.length;
    return new Promise((resolve) => {
      const prev = this.onEmit;
      this.onEmit = (socket, e) => {
        prev(socket, e);
        if (e.event === event && count++ === after) {
          this.onEmit = prev;
          resolve({ ...e, socket });
        }
      };
    });
  }
}

/** A `fetch` that answers from a route table and records every call. */
export class FakeFetch {
  readonly calls: Array<{ method: string; url: string; headers: Record<string, string>; body: unknown }> = [];
  constructor(private readonly route: (method: string, path: string, call: FakeFetch['calls'][number]) => Response | Promise<Response>) {}

  readonly fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    const call = { method: init.method ?? 'GET', url: input, headers, body: init.body ? JSON.parse(String(init.body)) : undefined };
    this.calls.push(call);
    const url = new URL(input);
    const res = await this.route(call.method, url.pathname + url.search, call);
    if (init.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    return res;
  };
}

/** A JSON response. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

const ID = 'AAAAAAAAAAAAAAAAAAAAAA';

/** A qr flow state. */
export function qrState(state: FlowState['state'], version: number, extra: Partial<FlowState> = {}): FlowState {
  return { topic: `qr:${ID}`, kind: 'qr', id: ID, state, version, expiresAt: '2099-01-01T00:00:00.000Z', ...extra };
}

/** A login flow state. */
export function loginState(state: FlowState['state'], version: number, extra: Partial<FlowState> = {}): FlowState {
  return { topic: `login:${ID}`, kind: 'login', id: ID, state, version, expiresAt: '2099-01-01T00:00:00.000Z', ...extra };
}

/** What `POST /v1/qr` answers. */
export function createdQr(): Record<string, unknown> {
  return { ...qrState('pending', 1), watchToken: 'wt-secret', qrPayload: `http://h/app#qr=${ID}`, imageUrl: `http://h/v1/qr/${ID}/image.svg` };
}
