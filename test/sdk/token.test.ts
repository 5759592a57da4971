/**
 * The `token` option as a function (sync or Promise), with an injected fake socket and fetch: it
 * is called before every socket (re)connect and every HTTP request that sends the token, and once
 * more after the server answered `unauthorized`, so an app can refresh an expired JWT. A refused
 * socket is recognised by `err.data.code` (the server's catalogue body), never by the message.
 */
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Handoff, type HandoffOptions, type TransportEvent } from '@handoff/client-sdk';
import { FakeFetch, FakeIo, json, qrState, type FakeSocket } from './fake-socket.js';
import { transportReached } from './helpers.js';

const ID = 'AAAAAAAAAAAAAAAAAAAAAA';
const made: Handoff[] = [];
afterEach(() => made.splice(0).forEach((h) => h.close()));

function client(io: FakeIo, options: Partial<HandoffOptions>, fetch = new FakeFetch(() => json(404, { error: { code: 'not_found', message: 'no' } }))): Handoff {
  const handoff = new Handoff({ url: 'http://handoff.test', io: io.factory, fetch: fetch.fetch, minReconnectDelay: 1, maxReconnectDelay: 5, ...options });
  made.push(handoff);
  return handoff;
}

/** The handshake `auth` a socket would send (the SDK passes a function). */
function authOf(socket: FakeSocket): Record<string, unknown> {
  let data: Record<string, unknown> = {};
  (socket.options.auth as (cb: (d: Record<string, unknown>) => void) => void)((d) => (data = d));
  return data;
}

/** What socket.io-client fires when the server's middleware refuses the connection with `err.data`. */
function refusal(code: string, message = 'anything'): Error {
  return Object.assign(new Error(message), { data: { code, message: 'A valid bearer token is required.' } });
}

/** A token function answering `tokens` in turn (the last one from then on), asynchronously; counts its calls. */
function tokenFn(...tokens: string[]): { fn: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    fn: async () => tokens[Math.min(calls++, tokens.length - 1)],
    calls: () => calls,
  };
}

describe('a token function on the socket', () => {
  it('is called before every connect and reconnect, and each handshake carries its answer', async () => {
    const io = new FakeIo();
    const tokens = tokenFn('jwt-1', 'jwt-2');
    const handoff = client(io, { token: tokens.fn });
    expect(await handoff.connect({ timeout: 5_000 })).toBe('connected');
    expect(authOf(io.sockets[0])).toEqual({ token: 'jwt-1' });

    io.last.fire('disconnect', 'transport close');
    await transportReached(handoff, (state) => state === 'connected');
    expect(tokens.calls()).toBe(2);
    expect(io.sockets).toHaveLength(2);
    expect(authOf(io.sockets[1])).toEqual({ token: 'jwt-2' });
    // The function and its tokens stay out of logs.
    for (const text of [inspect(handoff, { depth: 20 }), JSON.stringify(handoff)]) expect(text).not.toContain('jwt-');
  });

  it('is asked again after an `unauthorized` refusal, and the fresh token connects', async () => {
    const io = new FakeIo();
    io.onConnect = (socket) => (authOf(socket).token === 'expired' ? socket.fire('connect_error', refusal('unauthorized')) : socket.fire('connect'));
    const tokens = tokenFn('expired', 'fresh');
    const handoff = client(io, { token: tokens.fn });
    expect(await handoff.connect({ timeout: 5_000 })).toBe('connected');
    expect(tokens.calls()).toBe(2);
    expect(io.sockets.map(authOf)).toEqual([{ token: 'expired' }, { token: 'fresh' }]);
  });

  it('a function without a fresh token ends in fallback after that one more try (a fixed token: at once)', async () => {
    for (const [token, attempts] of [[tokenFn('expired').fn, 2] as const, ['expired', 1] as const]) {
      const io = new FakeIo();
      io.onConnect = (socket) => socket.fire('connect_error', refusal('unauthorized'));
      const handoff = client(io, { token });
      const events: TransportEvent[] = [];
      handoff.on('transport', (e) => events.push(e));
      expect(await handoff.connect({ timeout: 5_000 })).toBe('fallback');
      expect(io.sockets).toHaveLength(attempts);
      expect(events.at(-1)).toMatchObject({ newState: 'fallback', code: 'unauthorized' });
    }
  });

  it('a token function that fails makes a failed attempt, and the next attempt asks it again', async () => {
    const io = new FakeIo();
    let calls = 0;
    const handoff = client(io, {
      token: () => {
        if (calls++ === 0) throw new Error('refresh endpoint down');
        return 'jwt-ok';
      },
    });
    expect(await handoff.connect({ timeout: 5_000 })).toBe('connected');
    expect(calls).toBe(2);
    expect(io.sockets.map(authOf)).toEqual([{ token: 'jwt-ok' }]);
  });
});

describe('a refused socket is read from err.data.code', () => {
  it('`unauthorized` in err.data is a refusal, whatever the message says', async () => {
    const io = new FakeIo();
    io.onConnect = (socket) => socket.fire('connect_error', refusal('unauthorized', 'Not authorized, mate'));
    const handoff = client(io, { token: 'bad', url: ['http://a.test', 'http://b.test'] });
    expect(await handoff.connect({ timeout: 5_000 })).toBe('fallback');
    expect(io.sockets).toHaveLength(1); // no retry, no other node: the token will be refused again
    expect(handoff.url).toBe('http://a.test');
  });

  it('an error whose message is "unauthorized" but which carries no data is a transport failure, retried on the next node', async () => {
    const io = new FakeIo();
    io.onConnect = (socket) => (io.sockets.length === 1 ? socket.fire('connect_error', new Error('unauthorized')) : socket.fire('connect'));
    const handoff = client(io, { token: 'jwt', url: ['http://a.test', 'http://b.test'] });
    expect(await handoff.connect({ timeout: 5_000 })).toBe('connected');
    expect(io.sockets.map((s) => s.url)).toEqual(['http://a.test', 'http://b.test']);
  });

  it('`unavailable` in err.data (a node shutting down) moves on to the next node', async () => {
    const io = new FakeIo();
    io.onConnect = (socket) => (socket.url === 'http://a.test' ? socket.fire('connect_error', refusal('unavailable')) : socket.fire('connect'));
    const handoff = client(io, { token: 'jwt', url: ['http://a.test', 'http://b.test'] });
    expect(await handoff.connect({ timeout: 5_000 })).toBe('connected');
    expect(handoff.url).toBe('http://b.test');
  });
});

describe('a token function over HTTP', () => {
  const scanned = { ...qrState('scanned', 2), requester: { ip: '127.0.0.1', userAgent: 'UA', createdAt: '2026-01-01T00:00:00.000Z' } };
  const scanRoute = (good: string) =>
    new FakeFetch((method, path, call) => {
      if (method !== 'POST' || path !== `/v1/qr/${ID}/scan`) return json(404, { error: { code: 'not_found', message: 'no' } });
      return call.headers.authorization === `Bearer ${good}` ? json(200, scanned) : json(401, { error: { code: 'unauthorized', message: 'A valid bearer token is required.' } });
    });

  it('scan sends its token; after a 401 it is asked again and the call is retried once with the fresh token', async () => {
    const fetch = scanRoute('fresh');
    const tokens = tokenFn('expired', 'fresh');
    const handoff = client(new FakeIo(), { token: tokens.fn }, fetch);
    expect(await handoff.scan(ID)).toMatchObject({ state: { state: 'scanned' }, requester: { ip: '127.0.0.1' } });
    expect(fetch.calls.map((c) => c.headers.authorization)).toEqual(['Bearer expired', 'Bearer fresh']);
    expect(tokens.calls()).toBe(2);
  });

  it('without a fresh token the 401 stands: one retry at most, no loop', async () => {
    const fetch = scanRoute('never');
    const tokens = tokenFn('expired');
    const handoff = client(new FakeIo(), { token: tokens.fn }, fetch);
    await expect(handoff.scan(ID)).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
    expect(fetch.calls).toHaveLength(1);
    expect(tokens.calls()).toBe(2);
  });

  it('a fixed token is never retried', async () => {
    const fetch = scanRoute('never');
    const handoff = client(new FakeIo(), { token: 'expired' }, fetch);
    await expect(handoff.scan(ID)).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
    expect(fetch.calls).toHaveLength(1);
  });

  it('a function that gives no token makes scan reject with unauthorized before any request', async () => {
    const fetch = scanRoute('never');
    const handoff = client(new FakeIo(), { token: () => undefined }, fetch);
    await expect(handoff.scan(ID)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(fetch.calls).toHaveLength(0);
  });
});
