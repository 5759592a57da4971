/**
 * The SDK's own logic, with an injected fake socket and fetch (no server involved): the version
 * rule, resubscribing after a reconnect, Retry-After in long-poll, backoff bounds, and close()
 * leaving nothing behind.
 */
import { inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Handoff, HandoffError, type FlowState, type HandoffOptions, type Session } from '@handoff/client-sdk';
import { isNewer } from '../../client-sdk/src/subscription.js';
import { backoff } from '../../client-sdk/src/utils.js';
import { liveResources } from '../../client-sdk/src/scope.js';
import { FakeFetch, FakeIo, createdQr, json, loginState, qrState } from './fake-socket.js';
import { rejectionOf, stateReached, subscribed } from './helpers.js';

const SESSION: Session = { token: 'jwt', tokenType: 'session', expiresAt: '2099-01-01T00:00:00.000Z', user: { id: 'u1', email: 'ana@example.com', displayName: 'Ana' } };
/** What redeem answers for an app user (ACCOUNTS=app|both): an assertion for the app's backend, no email. */
const ASSERTION: Session = { token: 'assertion-jwt', tokenType: 'assertion', expiresAt: '2099-01-01T00:00:00.000Z', user: { id: 'acme-42', displayName: 'Ana', avatarUrl: null } };

function setup(opts: { route?: ConstructorParameters<typeof FakeFetch>[0]; options?: Partial<HandoffOptions> } = {}) {
  const io = new FakeIo();
  const fetch = new FakeFetch(
    opts.route ??
      ((method, path) => {
        if (method === 'POST' && path === '/v1/qr') return json(201, createdQr());
        return json(404, { error: { code: 'not_found', message: 'no' } });
      }),
  );
  const handoff = new Handoff({ url: 'http://handoff.test', io: io.factory, fetch: fetch.fetch, minReconnectDelay: 1, maxReconnectDelay: 5, ...opts.options });
  return { io, fetch, handoff };
}

/** Ack every subscribe with `snapshot()`. */
function ackSubscribes(io: FakeIo, snapshot: () => FlowState): void {
  io.onEmit = (_socket, e) => {
    if (e.event === 'subscribe') e.ack?.({ ok: true, state: snapshot() });
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the version rule', () => {
  it('takes higher versions and drops equal or lower ones', () => {
    expect(isNewer(null, qrState('pending', 1))).toBe(true);
    expect(isNewer(qrState('scanned', 2), qrState('confirmed', 3))).toBe(true);
    expect(isNewer(qrState('scanned', 2), qrState('scanned', 2))).toBe(false);
    expect(isNewer(qrState('scanned', 2), qrState('pending', 1))).toBe(false);
  });

  it('takes a same-version queued login state when its position went down, and only then', () => {
    expect(isNewer(loginState('queued', 1, { position: 3 }), loginState('queued', 1, { position: 2 }))).toBe(true);
    expect(isNewer(loginState('queued', 1, { position: 2 }), loginState('queued', 1, { position: 2 }))).toBe(false);
    expect(isNewer(loginState('queued', 1, { position: 1 }), loginState('queued', 1, { position: 2 }))).toBe(false);
    expect(isNewer(loginState('processing', 2), loginState('queued', 1, { position: 0 }))).toBe(false);
  });

  it('a subscription emits pushes in version order and drops stale ones', async () => {
    const { io, handoff } = setup();
    ackSubscribes(io, () => qrState('pending', 1));
    const qr = await handoff.qrLogin();
    const seen: string[] = [];
    qr.on('state', (s) => seen.push(`${s.state}@${s.version}`));
    await subscribed(qr);

    io.last.push(qrState('scanned', 2));
    io.last.push(qrState('pending', 1)); // stale: lower
    io.last.push(qrState('scanned', 2)); // stale: same version
    io.last.push({ ...qrState('cancelled', 3), topic: 'qr:BBBBBBBBBBBBBBBBBBBBBB', id: 'BBBBBBBBBBBBBBBBBBBBBB' }); // other flow
    io.last.push(qrState('confirmed', 3));
    expect(seen).toEqual(['pending@1', 'scanned@2', 'confirmed@3']);
    handoff.close();
  });

  it('an async login takes a same-version push whose position went down, and drops repeats and late ones', async () => {
    const { io, handoff } = setup({
      route: (method, path, call) => {
        expect(call.headers.prefer).toBe('respond-async');
        return json(202, { ...loginState('queued', 1, { position: 3 }), watchToken: 'wt' });
      },
    });
    ackSubscribes(io, () => loginState('queued', 1, { position: 3 }));
    const login = await handoff.asyncLogin({ email: 'ana@example.com', password: 'pw' });
    expect(login.queued).toBe(true);
    const positions: Array<number | undefined> = [];
    login.on('state', (s) => positions.push(s.position));
    await subscribed(login);
    io.last.push(loginState('queued', 1, { position: 2 }));
    io.last.push(loginState('queued', 1, { position: 2 }));
    io.last.push(loginState('queued', 1, { position: 1 }));
    io.last.push(loginState('queued', 1, { position: 2 })); // late
    io.last.push(loginState('processing', 2));
    io.last.push(loginState('queued', 1, { position: 0 }));
    expect(positions).toEqual([3, 2, 1, undefined]);
    handoff.close();
  });
});

describe('asyncLogin on a server that answers 200 (logs in at once)', () => {
  it('gives a handle with no flow: queued false, state null, no socket, session() at once', async () => {
    const { io, handoff } = setup({ route: () => json(200, SESSION) });
    const login = await handoff.asyncLogin({ email: 'ana@example.com', password: 'pw' });
    expect(login).toMatchObject({ queued: false, state: null, id: null, topic: null, subscriptionState: 'unsubscribed' });
    const states: FlowState[] = [];
    login.on('state', (s) => states.push(s));
    await expect(login.session()).resolves.toEqual(SESSION);
    expect(states).toEqual([]);
    expect(io.sockets).toHaveLength(0);
    handoff.close();
  });
});

describe('the redeemed session\'s tokenType', () => {
  /** A qr flow confirmed at subscribe, whose socket redeem acks `session`. */
  function confirmedQr(session: unknown) {
    const { io, handoff } = setup();
    io.onEmit = (_socket, e) => {
      if (e.event === 'subscribe') e.ack?.({ ok: true, state: qrState('confirmed', 3) });
      if (e.event === 'redeem') e.ack?.({ ok: true, session });
    };
    return handoff;
  }

  it('an assertion redeemed over the socket is returned as sent: tokenType assertion, the app user without email', async () => {
    const handoff = confirmedQr(ASSERTION);
    const qr = await handoff.qrLogin();
    const session = await qr.session({ timeout: 5_000 });
    expect(session).toEqual(ASSERTION);
    if (session.tokenType === 'assertion') expect(session.user.avatarUrl).toBeNull();
    handoff.close();
  });

  it('an assertion answered over HTTP (a login decided at once) is returned as sent', async () => {
    const { handoff } = setup({ route: () => json(200, ASSERTION) });
    await expect(handoff.login({ email: 'ana', password: 'pw' })).resolves.toEqual(ASSERTION);
    const login = await handoff.asyncLogin({ email: 'ana', password: 'pw' });
    await expect(login.session()).resolves.toEqual(ASSERTION);
    handoff.close();
  });

  it('a session from a server that sends no tokenType (only session tokens then) reads as tokenType session', async () => {
    const { tokenType: _, ...old } = SESSION;
    const { handoff } = setup({ route: () => json(200, old) });
    await expect(handoff.login({ email: 'ana@example.com', password: 'pw' })).resolves.toEqual(SESSION);
    handoff.close();
  });

  it('an unknown tokenType, or a session token without the user\'s email, is a bad_response', async () => {
    for (const body of [{ ...SESSION, tokenType: 'cookie' }, { ...ASSERTION, tokenType: 'session' }]) {
      const { handoff } = setup({ route: () => json(200, body) });
      await expect(handoff.login({ email: 'ana@example.com', password: 'pw' })).rejects.toMatchObject({ code: 'bad_response' });
      handoff.close();
    }
  });
});

describe('reconnecting', () => {
  it('resubscribes after a drop and takes the snapshot, so a transition made meanwhile is not missed', async () => {
    let server = qrState('pending', 1);
    const { io, handoff } = setup();
    const idle = liveResources();
    io.onEmit = (socket, e) => {
      if (e.event === 'subscribe') e.ack?.({ ok: true, state: server });
      if (e.event === 'redeem') {
        expect(e.payload).toEqual({ topic: server.topic, watchToken: 'wt-secret' });
        server = qrState('redeemed', 4);
        e.ack?.({ ok: true, session: SESSION });
        socket.push(server);
      }
    };
    const qr = await handoff.qrLogin();
    const seen: string[] = [];
    qr.on('state', (s) => seen.push(s.state));
    await subscribed(qr);
    const first = io.last;

    // The socket drops; while the SDK is away the phone scans and confirms.
    first.fire('disconnect', 'transport close');
    expect(qr.subscriptionState).toBe('subscribing');
    expect(handoff.state).toBe('connecting');
    server = qrState('confirmed', 3, { scannedBy: { userId: 'u1', displayName: 'Ana', avatarUrl: null } });

    const session = await qr.session({ timeout: 5_000 });
    expect(session).toEqual(SESSION);
    expect(io.sockets.length).toBeGreaterThanOrEqual(2);
    expect(io.sockets.filter((s) => s !== first).some((s) => s.emitted.some((e) => e.event === 'subscribe'))).toBe(true);
    await stateReached(qr, 'redeemed');
    expect(seen).toEqual(['pending', 'confirmed', 'redeemed']);
    // The flow ended: the subscription let go and the idle link closed.
    expect(qr.subscriptionState).toBe('unsubscribed');
    expect(handoff.state).toBe('disconnected');
    expect(liveResources()).toBe(idle);
    handoff.close();
  });

  it('a refused watch token ends the subscription and session() rejects with the server code', async () => {
    const { io, handoff } = setup();
    io.onEmit = (_s, e) => {
      if (e.event === 'subscribe') e.ack?.({ ok: false, error: { code: 'invalid_watch_token', message: 'nope' } });
    };
    const qr = await handoff.qrLogin();
    const err = await rejectionOf(qr.session());
    expect(err).toBeInstanceOf(HandoffError);
    expect(err).toMatchObject({ code: 'invalid_watch_token', message: 'nope' });
    expect(qr.subscriptionState).toBe('unsubscribed');
    handoff.close();
  });
});

describe('long-poll fallback', () => {
  it('waits at least Retry-After after a 429 before polling again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const polls: string[] = [];
    const { io, handoff } = setup({
      options: { maxReconnectDelay: 10_000 },
      route: (method, path) => {
        if (method === 'POST') return json(201, createdQr());
        polls.push(path);
        if (polls.length === 1) return json(200, qrState('pending', 1));
        if (polls.length === 2) return json(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': '30' });
        return new Promise<Response>(() => {}); // a long-poll that does not answer within this test
      },
    });
    io.onConnect = (socket) => socket.fire('connect_error', new Error('websocket error'));
    const qr = await handoff.qrLogin();
    const path = `/v1/flows/${encodeURIComponent(qr.topic)}`;

    // Two failed socket attempts → fallback → a snapshot read, then a long-poll that gets the 429.
    await vi.advanceTimersByTimeAsync(50);
    expect(handoff.state).toBe('fallback');
    expect(handoff.transport).toBe('long-poll');
    expect(polls).toEqual([path, `${path}?after=1&wait=25`]);

    await vi.advanceTimersByTimeAsync(29_000);
    expect(polls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(polls).toEqual([path, `${path}?after=1&wait=25`, path]);
    handoff.close();
  });
});

describe('secrets', () => {
  it('neither the watch token nor the JWT shows in console.log or JSON of the client and its handles', async () => {
    const io = new FakeIo();
    ackSubscribes(io, () => qrState('pending', 1));
    const fetch = new FakeFetch(() => json(201, createdQr()));
    const handoff = new Handoff({ url: 'http://handoff.test', token: 'jwt-secret', io: io.factory, fetch: fetch.fetch });
    const qr = await handoff.qrLogin();
    await subscribed(qr);
    for (const text of [inspect(handoff, { depth: 20 }), inspect(qr, { depth: 20 }), JSON.stringify(qr), JSON.stringify(handoff)]) {
      expect(text).not.toContain('wt-secret');
      expect(text).not.toContain('jwt-secret');
    }
    // …and yet they are used: the watch token in the subscribe payload, the JWT in the handshake.
    expect(io.last.emitted.find((e) => e.event === 'subscribe')?.payload).toEqual({ topic: qr.topic, watchToken: 'wt-secret' });
    const auth = io.last.options.auth as (cb: (data: object) => void) => void;
    expect(typeof auth).toBe('function'); // socket.io keeps `auth` on the socket: a function shows no token
    auth((data) => expect(data).toEqual({ token: 'jwt-secret' }));
    handoff.close();
  });
});

describe('backoff', () => {
  it('stays within [min, max] and grows with full jitter', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      expect(backoff(attempt, 500, 20_000, () => 0)).toBe(500);
      const top = backoff(attempt, 500, 20_000, () => 0.999999);
      expect(top).toBe(Math.min(20_000, 500 + Math.min(20_000, 500 * 2 ** attempt)));
      const any = backoff(attempt, 500, 20_000);
      expect(any).toBeGreaterThanOrEqual(500);
      expect(any).toBeLessThanOrEqual(20_000);
    }
  });
});

describe('close()', () => {
  it('leaves no timers, listeners or sockets behind, and rejects a pending session() with `closed`', async () => {
    const before = liveResources();
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const { io, handoff } = setup({
      route: (method) => (method === 'POST' ? json(201, createdQr()) : new Promise<Response>(() => {})),
    });
    // Sockets fail: retry timers, the fallback timer and a long-poll are all pending at close().
    io.onConnect = (socket) => socket.fire('connect_error', new Error('websocket error'));
    const transport: string[] = [];
    handoff.on('transport', (e) => transport.push(`${e.newState}/${e.code}`));
    const qr = await handoff.qrLogin();
    const pending = rejectionOf(qr.session({ timeout: 60_000 }));
    await vi.waitFor(() => expect(handoff.state).toBe('fallback'));
    expect(liveResources()).toBeGreaterThan(before);

    handoff.close();
    expect(await pending).toMatchObject({ code: 'closed' });
    expect(transport.at(-1)).toBe('disconnected/closed');
    expect(liveResources()).toBe(before);
    expect(io.sockets.every((s) => s.listenerCount() === 0 && s.disconnectCalls >= 1)).toBe(true);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(timersBefore);
    await expect(handoff.qrLogin()).rejects.toMatchObject({ code: 'closed' });
  });
});
