import { MAX_LONG_POLL_SECONDS, type ClientToServerEvents, type ServerToClientEvents } from '@handoff/protocol';
import type { ManagerOptions, Socket, SocketOptions } from 'socket.io-client';
import type { FetchLike } from './http.js';
import { TokenSource, type TokenOption } from './token.js';

/** A Socket.IO client socket typed with Handoff's event maps. */
export type HandoffSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Options the SDK passes to the socket factory. */
export type SocketFactoryOptions = Partial<ManagerOptions & SocketOptions>;

/** Makes a Socket.IO socket: socket.io-client's `io` (the default), or anything shaped like it. */
export type SocketFactory = (url: string, options: SocketFactoryOptions) => HandoffSocket;

/** Socket.IO transports the socket may use. */
export type SocketTransport = 'websocket' | 'polling' | 'webtransport';

/** Options of `new Handoff(options)`. Every duration is in milliseconds unless its name says otherwise. */
export interface HandoffOptions {
  /** Base URL of the Handoff server, e.g. `https://auth.example.com`; or a list of node URLs, tried in turn (the next one after a failed socket connect, a network error or a shutdown hint). Required. */
  url: string | readonly string[];
  /** App JWT (the phone side), sent as `Authorization: Bearer` and in the socket handshake; or a function returning it (sync or Promise), called at every socket (re)connect and HTTP call that sends it and once more after an `unauthorized`, so the app can refresh it. Default: none (anonymous browser). */
  token?: TokenOption;
  /** The `fetch` to use. Default: `globalThis.fetch`. */
  fetch?: FetchLike;
  /** The Socket.IO factory. Default: socket.io-client's `io`. */
  io?: SocketFactory;
  /** Socket.IO transports. Default `['websocket']`: "socket reachable" means a real WebSocket. */
  transports?: SocketTransport[];
  /** Socket.IO path. Default `/socket.io/`. */
  socketPath?: string;
  /** Extra headers on every HTTP request (e.g. `user-agent` in Node). Default: none. */
  headers?: Record<string, string>;
  /** Timeout of one HTTP request or socket ack. Default 10 000. */
  requestTimeout?: number;
  /** Timeout of one socket connection attempt. Default 10 000. */
  connectTimeout?: number;
  /** Switch to HTTP long-poll when no socket is up this long after connecting began. Default 5 000. */
  fallbackTimeout?: number;
  /** …or after this many socket attempts in a row failed. Default 2. */
  fallbackAfterFailures?: number;
  /** Allow the HTTP long-poll fallback at all. Default true. */
  longPoll?: boolean;
  /** Seconds one long-poll request waits on the server (1–30). Default 25. */
  longPollWait?: number;
  /** Smallest reconnect / retry delay (full-jitter exponential backoff). Default 500. */
  minReconnectDelay?: number;
  /** Largest reconnect / retry delay; also the socket retry interval while in fallback. Default 20 000. */
  maxReconnectDelay?: number;
  /** How often a failed redeem (network / 5xx / 429) is retried before `session()` rejects. Default 3. */
  redeemRetries?: number;
}

/** The defaults of every optional setting (documented in the README's options table). */
export const DEFAULTS = {
  transports: ['websocket'] as SocketTransport[],
  socketPath: '/socket.io/',
  requestTimeout: 10_000,
  connectTimeout: 10_000,
  fallbackTimeout: 5_000,
  fallbackAfterFailures: 2,
  longPoll: true,
  longPollWait: 25,
  minReconnectDelay: 500,
  maxReconnectDelay: 20_000,
  redeemRetries: 3,
} as const;

/** Options with every default applied and checked. */
export interface ResolvedOptions {
  /** Every URL (one unless a list was given), without trailing slashes. */
  urls: string[];
  /** The app JWT's source (its private fields never show in logs or JSON). */
  tokens: TokenSource;
  fetch: FetchLike;
  io: SocketFactory | undefined;
  transports: SocketTransport[];
  socketPath: string;
  headers: Record<string, string>;
  requestTimeout: number;
  connectTimeout: number;
  fallbackTimeout: number;
  fallbackAfterFailures: number;
  longPoll: boolean;
  longPollWait: number;
  minReconnectDelay: number;
  maxReconnectDelay: number;
  redeemRetries: number;
}

function positive(name: string, value: number | undefined, def: number, min = 0): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw new TypeError(`Handoff: option ${name} must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** Apply defaults; throws TypeError on a bad value (naming the option). */
export function resolveOptions(options: HandoffOptions): ResolvedOptions {
  const given = options?.url;
  const list: readonly unknown[] = Array.isArray(given) ? given : [given];
  if (list.length === 0 || list.some((u) => typeof u !== 'string' || u === '')) throw new TypeError('Handoff: option url is required');
  const urls = list.map((u) => {
    try {
      return new URL(u as string).href.replace(/\/+$/, '');
    } catch {
      throw new TypeError(`Handoff: option url is not a URL: ${String(u)}`);
    }
  });
  const fetchFn = options.fetch ?? (typeof fetch === 'function' ? (fetch.bind(globalThis) as FetchLike) : undefined);
  if (!fetchFn) throw new TypeError('Handoff: no global fetch; pass options.fetch');
  const token: unknown = options.token;
  if (token !== undefined && typeof token !== 'string' && typeof token !== 'function') {
    throw new TypeError('Handoff: option token must be a string or a function returning one');
  }
  const minDelay = positive('minReconnectDelay', options.minReconnectDelay, DEFAULTS.minReconnectDelay, 1);
  const maxDelay = positive('maxReconnectDelay', options.maxReconnectDelay, DEFAULTS.maxReconnectDelay, 1);
  if (maxDelay < minDelay) throw new TypeError('Handoff: maxReconnectDelay must be >= minReconnectDelay');
  const wait = positive('longPollWait', options.longPollWait, DEFAULTS.longPollWait, 1);
  if (wait > MAX_LONG_POLL_SECONDS || !Number.isInteger(wait)) {
    throw new TypeError(`Handoff: longPollWait must be a whole number of seconds, 1–${MAX_LONG_POLL_SECONDS}`);
  }
  const resolved: ResolvedOptions = {
    urls,
    tokens: new TokenSource(options.token),
    fetch: fetchFn,
    io: options.io,
    transports: options.transports ?? [...DEFAULTS.transports],
    socketPath: options.socketPath ?? DEFAULTS.socketPath,
    headers: { ...options.headers },
    requestTimeout: positive('requestTimeout', options.requestTimeout, DEFAULTS.requestTimeout, 1),
    connectTimeout: positive('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout, 1),
    fallbackTimeout: positive('fallbackTimeout', options.fallbackTimeout, DEFAULTS.fallbackTimeout, 0),
    fallbackAfterFailures: positive('fallbackAfterFailures', options.fallbackAfterFailures, DEFAULTS.fallbackAfterFailures, 1),
    longPoll: options.longPoll ?? DEFAULTS.longPoll,
    longPollWait: wait,
    minReconnectDelay: minDelay,
    maxReconnectDelay: maxDelay,
    redeemRetries: positive('redeemRetries', options.redeemRetries, DEFAULTS.redeemRetries, 0),
  };
  return resolved;
}
