/**
 * The SDK's list of node URLs (`new Handoff({ url: [a, b] })`), with an injected fake socket and
 * fetch: socket attempts and HTTP requests go to the URL in use; a failed socket connect, a
 * network error or the server's `reconnect` hint moves on to the next URL (wrapping around); a
 * refused token does not (every node would refuse it). The real-process side is node-loss.test.ts
 * and graceful-shutdown.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Handoff } from '@handoff/client-sdk';
import { Endpoints } from '../../client-sdk/src/endpoints.js';
import { FakeFetch, FakeIo, createdQr, json, qrState } from '../sdk/fake-socket.js';
import { waitUntil } from '../harness/resilience.js';

const A = 'http://a.test';
const B = 'http://b.test/base';

describe('Endpoints', () => {
  it('rotates once per failed URL and wraps around', () => {
    const e = new Endpoints([A, B]);
    expect(e.current).toBe(A);
    e.rotate(A);
    e.rotate(A); // a second failure of A (e.g. concurrent requests) does not skip B
    expect(e.current).toBe(B);
    e.rotate(B);
    expect(e.current).toBe(A);
    const one = new Endpoints([A]);
    one.rotate(A);
    expect(one.current).toBe(A);
  });
});

describe('new Handoff({ url: [a, b] })', () => {
  it('validates every URL', () => {
    expect(() => new Handoff({ url: [] })).toThrow(/url is required/);
    expect(() => new Handoff({ url: [A, 'not a url'] })).toThrow(/not a URL: not a url/);
    expect(new Handoff({ url: [`${A}/`, B] }).url).toBe(A);
  });

  it('moves the socket to the next URL after a failed connect, and back after the hint', async () => {
    const io = new FakeIo();
    const fetch = new FakeFetch((method, path) => (method === 'POST' && path === '/v1/qr' ? json(201, createdQr()) : json(404, {})));
    // Node A refuses connections; B accepts.
    io.onConnect = (socket) => (socket.url === 'http://a.test' && io.sockets.length === 1 ? socket.fire('connect_error', new Error('xhr poll error')) : socket.fire('connect'));
    io.onEmit = (_s, e) => {
      if (e.event === 'subscribe') e.ack?.({ ok: true, state: qrState('pending', 1) });
    };
    const handoff = new Handoff({ url: [A, B], io: io.factory, fetch: fetch.fetch, minReconnectDelay: 1, maxReconnectDelay: 5 });
    try {
      const qr = await handoff.qrLogin();
      expect(fetch.calls[0].url).toBe(`${A}/v1/qr`); // HTTP goes to the URL in use
      await waitUntil(() => qr.subscriptionState === 'subscribed', 'subscribed');
      expect(io.sockets.map((s) => s.url)).toEqual(['http://a.test', 'http://b.test']);
      expect(io.sockets[1].options.path).toBe('/base/socket.io/');
      expect(handoff.url).toBe(B);

      // B is shutting down: it sends the hint, then closes. The next attempt goes to A.
      io.last.fire('reconnect', { reason: 'shutdown' });
      io.last.fire('disconnect', 'transport close');
      await waitUntil(() => io.sockets.length === 3 && qr.subscriptionState === 'subscribed', 'resubscribed');
      expect(io.last.url).toBe('http://a.test');
      expect(handoff.url).toBe(A);
    } finally {
      handoff.close();
    }
  });

  it('moves HTTP to the next URL after a network error, not after an HTTP error', async () => {
    const calls: string[] = [];
    const fetchFn = async (url: string): Promise<Response> => {
      calls.push(url);
      if (url.startsWith(A)) throw new TypeError('fetch failed'); // connection refused
      return json(503, { error: { code: 'unavailable', message: 'down' } });
    };
    const handoff = new Handoff({ url: [A, B], fetch: fetchFn, io: new FakeIo().factory });
    try {
      await expect(handoff.login({ email: 'a@b.c', password: 'x' })).rejects.toMatchObject({ code: 'network' });
      expect(handoff.url).toBe(B);
      await expect(handoff.login({ email: 'a@b.c', password: 'x' })).rejects.toMatchObject({ code: 'unavailable' });
      expect(handoff.url).toBe(B); // an answer, even a 503, is no reason to move
      expect(calls).toEqual([`${A}/v1/sessions`, `${B}/v1/sessions`]);
    } finally {
      handoff.close();
    }
  });

  it('does not rotate when the socket refuses the token', async () => {
    const io = new FakeIo();
    // As the server refuses: the catalogue body in err.data.
    io.onConnect = (socket) => socket.fire('connect_error', Object.assign(new Error('unauthorized'), { data: { code: 'unauthorized', message: 'A valid bearer token is required.' } }));
    const handoff = new Handoff({ url: [A, B], token: 'bad', io: io.factory, fetch: new FakeFetch(() => json(404, {})).fetch });
    try {
      expect(await handoff.connect({ timeout: 5_000 })).toBe('fallback');
      expect(handoff.url).toBe(A);
      expect(io.sockets).toHaveLength(1);
    } finally {
      handoff.close();
    }
  });
});
